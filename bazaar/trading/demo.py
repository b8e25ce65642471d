"""Demo data for trading (idempotent): called by `bazaar demo`. Also the fixtures for the bench scenarios."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from bazaar.accounts.models import User
from bazaar.trading.models import Pokemon, TradeOffer, Trainer

SPECIES = [
    "Pikachu", "Bulbasaur", "Charmander", "Squirtle", "Eevee", "Jigglypuff", "Meowth", "Psyduck",
    "Snorlax", "Gengar", "Onix", "Machop", "Vulpix", "Growlithe", "Abra", "Magikarp",
]  # fmt: skip
FIRST = [
    "Ash",
    "Misty",
    "Brock",
    "Gary",
    "May",
    "Dawn",
    "Serena",
    "Iris",
    "Cilan",
    "Clemont",
    "Lillie",
    "Hau",
]
LAST = ["Ketchum", "Waterflower", "Harrison", "Oak", "Maple", "Berlitz", "Yvonne", "Dragon", "Dent", "Meyer"]
DEMO_USER = "ash"
DEMO_PASSWORD = "pikachu-demo-2024"
N_TRAINERS = 60
N_POKEMON = 300


def _ensure_user(username: str, password: str) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username, email=f"{username}@example.com")
        user.set_password(password)
        user.save()
    return user


def load() -> list[str]:
    """Create the demo data if missing; return lines to print (URLs, logins)."""
    from bazaar.trading import services

    lines = [
        "trading: public trainer list http://127.0.0.1:8000/trading/ · API /api/trading/trainers, /api/trading/pokemon",
        f"trading: trainer login {DEMO_USER} / {DEMO_PASSWORD} (acts for tr0001): my pokemon "
        "http://127.0.0.1:8000/trading/me/, offers http://127.0.0.1:8000/trading/offers/; "
        f"token: bazaar token create {DEMO_USER}",
        "trading: staff import wizard http://127.0.0.1:8000/trading/import/, direct exchange /trading/exchange/",
        "trading: sample CSVs docs/samples/trading-trainers.csv, docs/samples/trading-pokemon.csv "
        "(bazaar trading import docs/samples/trading-trainers.csv)",
    ]
    if Trainer.objects.filter(public_id="tr0001").exists():
        return lines
    ash = _ensure_user(DEMO_USER, DEMO_PASSWORD)
    misty = _ensure_user("misty", "togepi-demo-2024")
    base = dt.date(1990, 1, 1)
    for i in range(1, N_TRAINERS + 1):
        services.trainer_create(
            public_id=f"tr{i:04d}",
            first_name=FIRST[i % len(FIRST)],
            last_name=LAST[i % len(LAST)],
            date_of_birth=base + dt.timedelta(days=97 * i),
            username=DEMO_USER if i == 1 else ("misty" if i == 2 else None),
        )
    del ash, misty
    for i in range(1, N_POKEMON + 1):
        services.pokemon_create(
            public_id=f"pk{i:05d}",
            nickname=f"{SPECIES[i % len(SPECIES)][:4]}-{i}",
            species=SPECIES[i % len(SPECIES)],
            level=1 + (i * 7) % 100,
            owner=f"tr{1 + (i - 1) % N_TRAINERS:04d}",
            date_of_ownership=dt.date(2020, 1, 1) + dt.timedelta(days=i),
        )
    # Some history: a few direct exchanges and accepted offers.
    for i in range(3, 13, 2):
        a, b = f"tr{i:04d}", f"tr{i + 1:04d}"
        services.exchange(trainer_a=a, trainer_b=b, a_gives=[f"pk{i:05d}"], b_gives=[f"pk{i + 1:05d}"])
    done = services.offer_create(proposer="tr0002", receiver="tr0001", give=["pk00002"], ask=["pk00061"])
    services.offer_accept(offer_id=done.pk)
    # Open offers, two of them addressed to the demo login's trainer.
    services.offer_create(proposer="tr0002", receiver="tr0001", give=["pk00062"], ask=["pk00121"])
    services.offer_create(proposer="tr0020", receiver="tr0001", give=["pk00020"], ask=[])
    services.offer_create(proposer="tr0001", receiver="tr0030", give=["pk00181"], ask=["pk00030"])
    lines.append(
        f"trading: created {Trainer.objects.count()} trainers, {Pokemon.objects.count()} pokemon, "
        f"{TradeOffer.objects.filter(state='open').count()} open offers"
    )
    return lines


def bench_setup(*, trainers: int, pokemon: int) -> dict[str, Any]:
    """Idempotent fixtures for the exchange benchmark: trainers bx0001.., pokemon bxp00001.. dealt round-robin,
    and a staff user with a fresh token. Returns the token, the trainer ids and the current owner of each pokemon."""
    from bazaar.accounts.services import token_create
    from bazaar.trading import services

    with transaction.atomic():
        staff = User.objects.filter(username="bench-trading").first()
        if staff is None:
            staff = User(username="bench-trading", email="bench-trading@example.com", is_staff=True)
            staff.set_unusable_password()
            staff.save()
        for i in range(1, trainers + 1):
            if not Trainer.objects.filter(public_id=f"bx{i:04d}").exists():
                services.trainer_create(
                    public_id=f"bx{i:04d}",
                    first_name="Bench",
                    last_name=f"T{i}",
                    date_of_birth=dt.date(2000, 1, 1),
                )
        for i in range(1, pokemon + 1):
            if not Pokemon.objects.filter(public_id=f"bxp{i:05d}").exists():
                services.pokemon_create(
                    public_id=f"bxp{i:05d}",
                    nickname=f"b{i}",
                    species=SPECIES[i % len(SPECIES)],
                    level=1 + i % 100,
                    owner=f"bx{1 + (i - 1) % trainers:04d}",
                )
        token = token_create(user=staff, name="bench").secret
    return {
        "token": token,
        "trainers": [f"bx{i:04d}" for i in range(1, trainers + 1)],
        "owners": dict(
            Pokemon.objects.filter(public_id__startswith="bxp").values_list("public_id", "owner__public_id")
        ),
    }


def purge_prefix(prefix: str) -> int:
    """Remove bench leftovers (pokemon with ids starting ``prefix``) set-wise: a million rows through the ORM's
    Python-side cascade would take minutes. Offers touching them become invalid first."""
    from django.db import connection

    from bazaar.core import freshness
    from bazaar.trading.services.common import check_public_id

    check_public_id(prefix, "prefix")
    args: list[int | str] = [len(prefix), prefix]
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "UPDATE trading_tradeoffer SET state = 'invalid', reason = 'pokemon deleted', decided_at = CURRENT_TIMESTAMP "
            "WHERE state = 'open' AND id IN (SELECT offer_id FROM trading_offeritem WHERE pokemon_id IN "
            "(SELECT id FROM trading_pokemon WHERE SUBSTR(public_id, 1, %s) = %s))",
            args,
        )
        cur.execute(
            "DELETE FROM trading_offeritem WHERE pokemon_id IN "
            "(SELECT id FROM trading_pokemon WHERE SUBSTR(public_id, 1, %s) = %s)",
            args,
        )
        cur.execute(
            "DELETE FROM trading_ownershipchange WHERE pokemon_id IN "
            "(SELECT id FROM trading_pokemon WHERE SUBSTR(public_id, 1, %s) = %s)",
            args,
        )
        cur.execute("DELETE FROM trading_pokemon WHERE SUBSTR(public_id, 1, %s) = %s", args)
        deleted = int(cur.rowcount)
        freshness.changed(Pokemon)  # raw deletes send no signals
    return deleted
