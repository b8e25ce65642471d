"""Overlapping exchanges and offers from many threads on PostgreSQL: pokemon conserved, one owner each, history
consistent with final owners, no deadlock escaping as an error."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter

import pytest
from django.db import connection

from bazaar.core.errors import DomainError
from bazaar.trading import services
from bazaar.trading.checks import invariants
from bazaar.trading.models import OwnershipChange, Pokemon, Trainer

TRAINERS = ["c1", "c2", "c3", "c4"]


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
    errors: list[BaseException] = []

    def trade() -> None:
        try:
            with transaction.atomic():
                _lock_pokemon(pks)  # what a trade takes first, held until the offer has committed (or 20 s)
                held.set()
                done.wait(20)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=trade)
    holder.start()
    try:
        assert held.wait(10)
        offered: list[int] = []

        def offer() -> None:
            try:
                offered.append(
                    services.offer_create(proposer="o1", receiver="o2", give=["op1"], ask=["op2"]).pk
                )
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        proposer = threading.Thread(target=offer)
        proposer.start()
        proposer.join(10)  # with FOR UPDATE it would still be waiting here, on the held rows
        assert not proposer.is_alive()
        assert not done.is_set()  # the trade was holding its locks all along
        assert errors == []
        assert len(offered) == 1
    finally:
        done.set()
        holder.join(30)
    from bazaar.trading.models import OfferItem

    assert sorted(
        OfferItem.objects.filter(offer_id=offered[0]).values_list("pokemon_id", flat=True)
    ) == sorted(pks)
