"""Offers with a message and an expiry, and counter-offers (services and API)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bazaar.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from bazaar.trading import services
from bazaar.trading.models import TradeOffer
from bazaar.trading.tests.conftest import owners, snapshot

T = "/api/trading"


def test_propose_with_message_and_expiry(world: Any) -> None:
    offer = services.offer_propose(
        proposer="tr1", receiver="tr2", give=["pk1"], ask=["pk3"], message="  fair swap?  ", expires_in_days=3,
        actor=world.ash,
    )  # fmt: skip
    assert (offer.message, offer.state, offer.counter_to_id) == ("fair swap?", "open", None)
    assert offer.expires_at - offer.created_at == dt.timedelta(days=3)


@pytest.mark.parametrize(
    ("kw", "code"),
    [({"message": "x" * 501}, "message_too_long"), ({"expires_in_days": 0}, "invalid_expiry"),
     ({"expires_in_days": 31}, "invalid_expiry")],
)  # fmt: skip
def test_propose_refusals_write_nothing(world: Any, kw: dict[str, Any], code: str) -> None:
    before = snapshot()
    with pytest.raises(ValidationFailed) as exc:
        services.offer_propose(proposer="tr1", receiver="tr2", give=["pk1"], ask=[], actor=world.ash, **kw)
    assert exc.value.code == code
    assert snapshot() == before


def test_counter_declines_the_original_and_links_it(world: Any) -> None:
    original = services.offer_propose(
        proposer="tr1", receiver="tr2", give=["pk1"], ask=["pk3"], actor=world.ash
    )
    counter = services.offer_counter(
        offer_id=original.pk,
        give=["pk3", "pk4"],
        ask=["pk1", "pk2"],
        message="both for both",
        actor=world.misty,
    )
    original.refresh_from_db()
    assert (original.state, original.reason) == ("declined", f"countered by offer {counter.pk}")
    assert (counter.proposer.public_id, counter.receiver.public_id, counter.counter_to_id) == (
        "tr2",
        "tr1",
        original.pk,
    )
    assert counter.message == "both for both"
    services.offer_accept(offer_id=counter.pk, actor=world.ash)
    assert owners() == {"pk1": "tr2", "pk2": "tr2", "pk3": "tr1", "pk4": "tr1", "pk5": "tr3"}


def test_counter_refusals_change_nothing(world: Any) -> None:
    original = services.offer_propose(
        proposer="tr1", receiver="tr2", give=["pk1"], ask=["pk3"], actor=world.ash
    )
    before = snapshot()
    with pytest.raises(PermissionDenied) as denied:  # the proposer cannot counter their own offer
        services.offer_counter(offer_id=original.pk, give=["pk1"], ask=["pk3"], actor=world.ash)
    assert denied.value.code == "not_your_offer"
    with pytest.raises(
        Conflict
    ) as bad:  # pk5 is Brock's: the whole counter is refused, the original stays open
        services.offer_counter(offer_id=original.pk, give=["pk3"], ask=["pk5"], actor=world.misty)
    assert bad.value.code == "exchange_invalid"
    with pytest.raises(NotFound):
        services.offer_counter(offer_id=original.pk + 100, give=["pk3"], ask=["pk1"], actor=world.misty)
    assert snapshot() == before
    services.offer_decline(offer_id=original.pk, actor=world.misty)
    with pytest.raises(Conflict) as closed:
        services.offer_counter(offer_id=original.pk, give=["pk3"], ask=["pk1"], actor=world.misty)
    assert closed.value.code == "offer_not_open"
    assert TradeOffer.objects.count() == 1


def test_api_propose_and_counter(world: Any, api_client: Any) -> None:
    r = api_client.call(
        "POST", f"{T}/offers", {"proposer": "tr1", "receiver": "tr2", "give": ["pk1"], "ask": ["pk3"],
                                "message": "hi", "expires_in_days": 2}, token=world.ash_token,
    )  # fmt: skip
    assert r.status_code == 201, r.content
    assert (r.json()["message"], r.json()["counter_to"]) == ("hi", None)
    offer_id = r.json()["id"]
    r = api_client.call(
        "POST",
        f"{T}/offers/{offer_id}/counter",
        {"give": ["pk3"], "ask": ["pk1", "pk2"]},
        token=world.misty_token,
    )
    assert r.status_code == 201, r.content
    assert (r.json()["proposer"], r.json()["counter_to"], r.json()["ask"]) == (
        "tr2",
        offer_id,
        ["pk1", "pk2"],
    )
    before = snapshot()
    r = api_client.call(
        "POST", f"{T}/offers/{offer_id}/counter", {"give": ["pk3"], "ask": []}, token=world.misty_token
    )
    assert (r.status_code, r.json()["code"]) == (409, "offer_not_open")
    assert snapshot() == before
