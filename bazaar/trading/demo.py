"""Demo data for trading (idempotent): called by `bazaar demo`. (The bench fixtures are in bench/setup.py.)"""

from __future__ import annotations

import datetime as dt

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
