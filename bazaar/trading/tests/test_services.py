from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bazaar.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from bazaar.trading import services
from bazaar.trading.checks import invariants
from bazaar.trading.models import OfferState, OwnershipChange, Pokemon, Trainer
from bazaar.trading.tests.conftest import owners, snapshot


def test_trainer_create_existing_id_is_conflict_and_writes_nothing(world: Any) -> None:
    before = snapshot()
    with pytest.raises(Conflict) as exc:
        services.trainer_create(
            public_id="tr1", first_name="X", last_name="Y", date_of_birth=dt.date(2000, 1, 1)
        )
    assert exc.value.code == "trainer_exists"
    assert snapshot() == before
    assert Trainer.objects.get(public_id="tr1").first_name == "Ash"


def test_pokemon_create_existing_id_is_conflict(world: Any) -> None:
    before = snapshot()
    with pytest.raises(Conflict) as exc:
        services.pokemon_create(public_id="pk1", nickname="x", species="y", level=5, owner="tr2")
    assert exc.value.code == "pokemon_exists"
    assert snapshot() == before


def test_pokemon_create_unknown_owner_and_bad_level(world: Any) -> None:
    before = snapshot()
    with pytest.raises(NotFound) as nf:
        services.pokemon_create(public_id="pk9", nickname="x", species="y", level=5, owner="nobody")
    assert nf.value.code == "trainer_not_found"
    with pytest.raises(ValidationFailed) as vf:
        services.pokemon_create(public_id="pk9", nickname="x", species="y", level=101, owner="tr1")
    assert vf.value.code == "invalid_level"
    assert snapshot() == before


def test_non_staff_cannot_write(world: Any) -> None:
    before = snapshot()
    with pytest.raises(PermissionDenied):
        services.pokemon_delete(public_id="pk1", actor=world.ash)
    assert snapshot() == before


def test_trainer_delete_refused_while_owning_then_cascade(world: Any) -> None:
    before = snapshot()
    with pytest.raises(Conflict) as exc:
        services.trainer_delete(public_id="tr1")
    assert exc.value.code == "trainer_has_pokemon"
    assert exc.value.details == {"pokemon_count": 2}
    assert snapshot() == before
    assert services.trainer_delete(public_id="tr1", cascade=True) == 2
    assert not Trainer.objects.filter(public_id="tr1").exists()
    assert sorted(owners()) == ["pk3", "pk4", "pk5"]


def test_trainer_without_pokemon_deletes(world: Any) -> None:
    services.pokemon_delete(public_id="pk5")
    assert services.trainer_delete(public_id="tr3") == 0


def test_pokemon_owner_change_writes_admin_history(world: Any) -> None:
    services.pokemon_update(public_id="pk1", changes={"owner": "tr3", "level": 99})
    p = Pokemon.objects.get(public_id="pk1")
    assert (p.owner.public_id, p.level) == ("tr3", 99)
    last = OwnershipChange.objects.filter(pokemon=p).order_by("-id").first()
    assert last is not None
    assert (last.cause, last.from_trainer.public_id, last.to_trainer.public_id) == ("admin", "tr1", "tr3")  # type: ignore[union-attr]
    assert invariants()["violations"] == 0


def test_exchange_swaps_and_writes_history(world: Any) -> None:
    result = services.exchange(trainer_a="tr1", trainer_b="tr2", a_gives=["pk1"], b_gives=["pk3", "pk4"])
    assert result.a_gave == ["pk1"]
    o = owners()
    assert (o["pk1"], o["pk3"], o["pk4"], o["pk2"]) == ("tr2", "tr1", "tr1", "tr1")
    causes = list(
        OwnershipChange.objects.filter(cause="exchange").values_list("pokemon__public_id", flat=True)
    )
    assert sorted(causes) == ["pk1", "pk3", "pk4"]
    assert Pokemon.objects.get(public_id="pk1").date_of_ownership == dt.date.today()
    assert invariants()["violations"] == 0


def test_exchange_one_sided(world: Any) -> None:
    services.exchange(trainer_a="tr1", trainer_b="tr3", a_gives=["pk2"], b_gives=[])
    assert owners()["pk2"] == "tr3"


@pytest.mark.parametrize(
    ("a_gives", "b_gives", "code", "problem"),
    [
        (["pk3"], [], "exchange_invalid", {"pokemon": "pk3", "reason": "not_owned_by_giver", "giver": "tr1"}),
        (["pk1"], ["nope"], "exchange_invalid", {"pokemon": "nope", "reason": "not_found"}),
        (["pk1", "pk1"], [], "exchange_invalid", {"pokemon": "pk1", "reason": "listed_twice"}),
    ],
)
def test_exchange_invalid_changes_nothing(
    world: Any, a_gives: list[str], b_gives: list[str], code: str, problem: Any
) -> None:
    before = snapshot()
    with pytest.raises(Conflict) as exc:
        services.exchange(trainer_a="tr1", trainer_b="tr2", a_gives=a_gives, b_gives=b_gives)
    assert exc.value.code == code
    assert problem in exc.value.details["problems"]
    assert snapshot() == before


def test_exchange_with_self_and_empty_refused(world: Any) -> None:
    before = snapshot()
    with pytest.raises(Conflict) as exc:
        services.exchange(trainer_a="tr1", trainer_b="tr1", a_gives=["pk1"], b_gives=[])
    assert exc.value.code == "self_exchange"
    with pytest.raises(ValidationFailed) as vf:
        services.exchange(trainer_a="tr1", trainer_b="tr2", a_gives=[], b_gives=[])
    assert vf.value.code == "empty_exchange"
    assert snapshot() == before


def test_offer_accept_by_receiver(world: Any) -> None:
    offer = services.offer_create(proposer="tr1", receiver="tr2", give=["pk1"], ask=["pk3"], actor=world.ash)
    with pytest.raises(PermissionDenied):
        services.offer_accept(offer_id=offer.pk, actor=world.ash)  # proposer cannot accept
    services.offer_accept(offer_id=offer.pk, actor=world.misty)
    offer.refresh_from_db()
    assert offer.state == OfferState.ACCEPTED
    o = owners()
    assert (o["pk1"], o["pk3"]) == ("tr2", "tr1")
    assert OwnershipChange.objects.filter(cause="offer", offer=offer).count() == 2
    with pytest.raises(Conflict) as exc:
        services.offer_cancel(offer_id=offer.pk, actor=world.ash)
    assert exc.value.code == "offer_not_open"


def test_offer_propose_only_for_own_trainer(world: Any) -> None:
    before = snapshot()
    with pytest.raises(PermissionDenied):
        services.offer_create(proposer="tr2", receiver="tr1", give=["pk3"], ask=[], actor=world.ash)
    with pytest.raises(Conflict) as exc:
        services.offer_create(proposer="tr1", receiver="tr2", give=["pk3"], ask=[], actor=world.ash)
    assert exc.value.code == "exchange_invalid"
    assert snapshot() == before


def test_offer_decline_and_cancel(world: Any) -> None:
    o1 = services.offer_create(proposer="tr1", receiver="tr2", give=["pk1"], ask=[], actor=world.ash)
    o2 = services.offer_create(proposer="tr1", receiver="tr2", give=["pk2"], ask=[], actor=world.ash)
    with pytest.raises(PermissionDenied):
        services.offer_decline(offer_id=o1.pk, actor=world.ash)
    assert services.offer_decline(offer_id=o1.pk, actor=world.misty).state == OfferState.DECLINED
    with pytest.raises(PermissionDenied):
        services.offer_cancel(offer_id=o2.pk, actor=world.misty)
    assert services.offer_cancel(offer_id=o2.pk, actor=world.ash).state == OfferState.CANCELLED
    with pytest.raises(Conflict):
        services.offer_accept(offer_id=o1.pk, actor=world.misty)
    assert owners()["pk1"] == "tr1"


def test_offer_becomes_invalid_when_pokemon_changed_hands(world: Any) -> None:
    offer = services.offer_create(proposer="tr1", receiver="tr2", give=["pk1"], ask=["pk3"])
    services.exchange(trainer_a="tr2", trainer_b="tr3", a_gives=["pk3"], b_gives=[])
    before_owners = owners()
    with pytest.raises(Conflict) as exc:
        services.offer_accept(offer_id=offer.pk, actor=world.staff)
    assert exc.value.code == "offer_invalid"
    assert {"pokemon": "pk3", "reason": "not_owned_by_giver", "giver": "tr2"} in exc.value.details["problems"]
    offer.refresh_from_db()
    assert offer.state == OfferState.INVALID
    assert owners() == before_owners


def test_offer_expires(world: Any, settings: Any) -> None:
    settings.TRADING_OFFER_TTL_SECONDS = -1
    offer = services.offer_create(proposer="tr1", receiver="tr2", give=["pk1"], ask=[])
    with pytest.raises(Conflict) as exc:
        services.offer_accept(offer_id=offer.pk)
    assert exc.value.code == "offer_expired"
    offer.refresh_from_db()
    assert offer.state == OfferState.EXPIRED
    assert owners()["pk1"] == "tr1"
    other = services.offer_create(proposer="tr1", receiver="tr2", give=["pk2"], ask=[])
    assert services.offers_expire() == 1
    other.refresh_from_db()
    assert other.state == OfferState.EXPIRED


def test_deleting_a_pokemon_invalidates_open_offers(world: Any) -> None:
    offer = services.offer_create(proposer="tr1", receiver="tr2", give=["pk1"], ask=[])
    services.pokemon_delete(public_id="pk1")
    offer.refresh_from_db()
    assert offer.state == OfferState.INVALID
