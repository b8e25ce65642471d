"""Overlapping exchanges and offers from many threads on PostgreSQL: pokemon conserved, one owner each, history
consistent with final owners, no deadlock escaping as an error."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from bazaar.core.errors import DomainError
from bazaar.trading import services
from bazaar.trading.checks import invariants
from bazaar.trading.models import OfferItem, OwnershipChange, Pokemon, TradeOffer, Trainer

TRAINERS = ["c1", "c2", "c3", "c4"]


def _thread(body: Callable[[], object], outcome: list[object]) -> threading.Thread:
    """A thread running ``body`` on its own connection; what it returns or raises lands in ``outcome``."""

    def run() -> None:
        try:
            outcome.append(body())
        except BaseException as exc:
            outcome.append(exc)
        finally:
            connection.close()

    return threading.Thread(target=run)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_trades_keep_invariants() -> None:
    for t in TRAINERS:
        services.trainer_create(public_id=t, first_name="C", last_name=t, date_of_birth=dt.date(2000, 1, 1))
    ids = [f"cp{i}" for i in range(24)]
    for i, pid in enumerate(ids):
        services.pokemon_create(public_id=pid, nickname=pid, species="Eevee", level=5, owner=TRAINERS[i % 4])
    outcomes: Counter[str] = Counter()
    unexpected: list[BaseException] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            for _ in range(25):
                a, b = rnd.sample(TRAINERS, 2)
                # Pick from a stale view on purpose: many requests will name pokemon that moved meanwhile.
                a_gives = rnd.sample(ids, rnd.randint(0, 2))
                b_gives = [p for p in rnd.sample(ids, rnd.randint(1, 2)) if p not in a_gives]
                try:
                    if rnd.random() < 0.5:
                        services.exchange(trainer_a=a, trainer_b=b, a_gives=a_gives, b_gives=b_gives)
                        key = "exchange_ok"
                    else:
                        current = dict(
                            Pokemon.objects.filter(public_id__in=a_gives + b_gives).values_list(
                                "public_id", "owner__public_id"
                            )
                        )
                        give = [p for p in a_gives if current.get(p) == a]
                        ask = [p for p in b_gives if current.get(p) == b]
                        offer = services.offer_create(proposer=a, receiver=b, give=give, ask=ask)
                        services.offer_accept(offer_id=offer.pk)
                        key = "offer_ok"
                except DomainError as exc:
                    key = exc.code
                with lock:
                    outcomes[key] += 1
        except BaseException as exc:  # anything but a DomainError is a bug (500)
            with lock:
                unexpected.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not unexpected, unexpected
    assert outcomes["exchange_ok"] + outcomes["offer_ok"] > 0
    assert set(outcomes) <= {
        "exchange_ok",
        "offer_ok",
        "exchange_invalid",
        "offer_invalid",
        "empty_exchange",
        "conflict_retry",
    }
    # Conservation: the same pokemon, each with exactly one (existing) owner.
    assert sorted(Pokemon.objects.values_list("public_id", flat=True)) == sorted(ids)
    assert Pokemon.objects.filter(owner__in=Trainer.objects.all()).count() == len(ids)
    report = invariants()
    assert report["violations"] == 0, report
    moves = OwnershipChange.objects.exclude(cause="create").count()
    assert moves >= outcomes["exchange_ok"] + outcomes["offer_ok"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_new_offer_does_not_wait_for_a_trade_holding_its_pokemon() -> None:
    # The deadlock CI caught: an offer's items check their pokemon (FOR KEY SHARE) at COMMIT, in the offer's
    # order, while a trade holds pokemon in pk order. A trade's lock is FOR NO KEY UPDATE, which those checks do
    # not wait for, so there is no cycle: the offer commits while the trade still holds the very pokemon it names.
    from django.db import transaction

    from bazaar.trading.services.trades import _lock_pokemon

    for t in ("o1", "o2"):
        services.trainer_create(public_id=t, first_name="O", last_name=t, date_of_birth=dt.date(2000, 1, 1))
    services.pokemon_create(public_id="op1", nickname="a", species="Eevee", level=5, owner="o1")
    services.pokemon_create(public_id="op2", nickname="b", species="Eevee", level=5, owner="o2")
    pks = list(Pokemon.objects.filter(public_id__in=["op1", "op2"]).values_list("pk", flat=True))
    held, done = threading.Event(), threading.Event()
    traded: list[object] = []

    def trade() -> None:
        with transaction.atomic():
            _lock_pokemon(pks)  # what a trade takes first, held until the offer has committed (or 20 s)
            held.set()
            done.wait(20)

    holder = _thread(trade, traded)
    holder.start()
    try:
        assert held.wait(10)
        offered: list[object] = []
        proposer = _thread(
            lambda: services.offer_create(proposer="o1", receiver="o2", give=["op1"], ask=["op2"]), offered
        )
        proposer.start()
        proposer.join(10)  # with FOR UPDATE it would still be waiting here, on the held rows
        assert not proposer.is_alive()
        assert not done.is_set()  # the trade was holding its locks all along
        assert len(offered) == 1
        assert isinstance(offered[0], TradeOffer), offered
    finally:
        done.set()
        holder.join(30)
    assert traded == [None]
    assert sorted(
        OfferItem.objects.filter(offer_id=offered[0].pk).values_list("pokemon_id", flat=True)
    ) == sorted(pks)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_offer_naming_a_pokemon_a_staff_delete_holds_is_refused_not_a_500() -> None:
    # A staff delete locks its pokemon FOR UPDATE and commits; an offer made meanwhile passed its ownership check
    # before. Without the offer's own FOR KEY SHARE its items' foreign-key check failed at COMMIT: an
    # IntegrityError (a 500). Now the offer waits for the delete and is refused as the pokemon is gone.
    from django.db import transaction

    from bazaar.accounts.models import User
    from bazaar.core.testing import wait_until

    staff = User.objects.create(username="staff-d", is_staff=True)
    for t in ("d1", "d2"):
        services.trainer_create(public_id=t, first_name="D", last_name=t, date_of_birth=dt.date(2000, 1, 1))
    services.pokemon_create(public_id="dp1", nickname="a", species="Eevee", level=5, owner="d1")
    services.pokemon_create(public_id="dp2", nickname="b", species="Eevee", level=5, owner="d2")
    deleted, proceed = threading.Event(), threading.Event()
    removed: list[object] = []
    outcome: list[object] = []

    def delete() -> None:
        with transaction.atomic():
            services.pokemon_delete(public_id="dp1", actor=staff)
            deleted.set()
            proceed.wait(20)  # held, uncommitted, until the offer is waiting on it

    deleter = _thread(delete, removed)
    deleter.start()
    proposer = _thread(
        lambda: services.offer_create(proposer="d1", receiver="d2", give=["dp1"], ask=["dp2"]), outcome
    )
    try:
        assert deleted.wait(10)
        proposer.start()

        def offer_waits() -> bool:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                return bool(cur.fetchone()[0])

        wait_until(offer_waits, timeout=10)
    finally:
        proceed.set()
        deleter.join(30)
        if proposer.ident is not None:
            proposer.join(30)
    assert removed == [None]
    assert len(outcome) == 1
    refused = outcome[0]
    assert isinstance(refused, DomainError), refused
    assert refused.code == "exchange_invalid"
    assert refused.details["problems"] == [{"pokemon": "dp1", "reason": "not_found"}]
    assert not TradeOffer.objects.exists()
    assert not OfferItem.objects.exists()
    assert not Pokemon.objects.filter(public_id="dp1").exists()
