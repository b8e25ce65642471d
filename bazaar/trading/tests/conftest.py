"""Fixtures for the trading tests: a few trainers and pokemon, staff and trainer users with tokens."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from bazaar.trading import services
from bazaar.trading.models import OwnershipChange, Pokemon, TradeOffer, Trainer


@dataclass
class World:
    staff: Any
    staff_token: str
    ash: Any
    ash_token: str
    misty: Any
    misty_token: str


@pytest.fixture
def world(db: Any, make_user: Any, token_for: Any) -> World:
    staff = make_user("oak", is_staff=True)
    ash = make_user("ash")
    misty = make_user("misty")
    services.trainer_create(
        public_id="tr1",
        first_name="Ash",
        last_name="Ketchum",
        date_of_birth=dt.date(1987, 5, 22),
        username="ash",
    )
    services.trainer_create(
        public_id="tr2",
        first_name="Misty",
        last_name="W",
        date_of_birth=dt.date(1988, 7, 10),
        username="misty",
    )
    services.trainer_create(
        public_id="tr3", first_name="Brock", last_name="H", date_of_birth=dt.date(1985, 4, 15)
    )
    for i, owner in enumerate(["tr1", "tr1", "tr2", "tr2", "tr3"], start=1):
        services.pokemon_create(
            public_id=f"pk{i}",
            nickname=f"n{i}",
            species="Pikachu" if i % 2 else "Onix",
            level=10 * i,
            owner=owner,
        )
    return World(staff, token_for(staff), ash, token_for(ash), misty, token_for(misty))


def owners() -> dict[str, str]:
    return dict(Pokemon.objects.values_list("public_id", "owner__public_id"))


def snapshot() -> tuple[Any, ...]:
    """Everything a failed write must leave untouched."""
    return (
        sorted(Trainer.objects.values_list("public_id", "first_name", "last_name", "date_of_birth")),
        sorted(
            Pokemon.objects.values_list(
                "public_id", "nickname", "species", "level", "owner_id", "date_of_ownership"
            )
        ),
        OwnershipChange.objects.count(),
        sorted(TradeOffer.objects.values_list("id", "state")),
    )
