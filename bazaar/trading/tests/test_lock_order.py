"""One lock order (pokemon by primary key, then offers): an offer accept racing a staff owner change on one of its
pokemon never deadlocks, and never answers 503. The focused race, 40 rounds over HTTP on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from bazaar.trading import services
from bazaar.trading.checks import invariants
from bazaar.trading.models import Pokemon

ROUNDS = 40


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_accept_racing_an_owner_change_never_deadlocks(make_user: Any, token_for: Any) -> None:
    staff = {"HTTP_AUTHORIZATION": f"Bearer {token_for(make_user('race-staff', is_staff=True))}"}
    for t in ("ra", "rb", "rc"):
        services.trainer_create(public_id=t, first_name="R", last_name=t, date_of_birth=dt.date(2000, 1, 1))
    outcomes: Counter[tuple[str, int, str]] = Counter()
    for n in range(ROUNDS):
        give, ask = f"rg{n}", f"rk{n}"
        services.pokemon_create(public_id=give, nickname="G", species="Eevee", level=5, owner="ra")
        services.pokemon_create(public_id=ask, nickname="K", species="Onix", level=5, owner="rb")
        offer = services.offer_create(proposer="ra", receiver="rb", give=[give], ask=[ask])
        barrier = threading.Barrier(2)
        answers: dict[str, tuple[int, str]] = {}

        def send(name: str, method: str, path: str, body: Any) -> None:
            try:
                barrier.wait()
                r = getattr(Client(), method)(
                    path, json.dumps(body), content_type="application/json", **staff
                )
                answers[name] = (r.status_code, r.json().get("code", "") if r.status_code >= 400 else "")
            finally:
                connections.close_all()

        threads = [
            threading.Thread(
                target=send, args=("accept", "post", f"/api/trading/offers/{offer.pk}/accept", {})
            ),
            threading.Thread(
                target=send, args=("owner", "patch", f"/api/trading/pokemon/{give}", {"owner": "rc"})
            ),
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        for name, (status, code) in answers.items():
            outcomes[(name, status, code)] += 1
        # Whoever went first, the owner change is applied last or refused nothing: rc owns the pokemon now.
        assert Pokemon.objects.get(public_id=give).owner.public_id == "rc"
    print("\naccept vs owner change:", dict(outcomes))
    assert sum(outcomes.values()) == 2 * ROUNDS
    assert not [o for o in outcomes if o[1] >= 500], outcomes
    # The accept either won (200) or came second: the owner change had invalidated the offer (409 offer_not_open,
    # or offer_invalid had it read the offer first). The owner change always goes through.
    assert set(outcomes) <= {
        ("accept", 200, ""),
        ("accept", 409, "offer_not_open"),
        ("accept", 409, "offer_invalid"),
        ("owner", 200, ""),
    }
    assert outcomes[("owner", 200, "")] == ROUNDS
    assert invariants()["violations"] == 0
