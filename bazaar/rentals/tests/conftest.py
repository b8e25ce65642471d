"""Fixtures for the rentals tests: a staff clerk with a token, titles with copies, customers."""

from __future__ import annotations

from typing import Any

import pytest

from bazaar.rentals import services
from bazaar.rentals.models import Customer, Title


@pytest.fixture
def clerk(make_user: Any) -> Any:
    return make_user("clerk", is_staff=True)


@pytest.fixture
def staff_token(clerk: Any, token_for: Any) -> str:
    return str(token_for(clerk))


@pytest.fixture
def make_title(db: Any) -> Any:
    counter = {"n": 0}

    def make(kind: str = "regular", copies: int = 1, title: str | None = None, **extra: Any) -> Title:
        counter["n"] += 1
        return services.title_create(
            title=title or f"Book {counter['n']}",
            author=extra.pop("author", "Author"),
            kind=kind,
            copies=copies,
            **extra,
        )

    return make


@pytest.fixture
def make_customer(db: Any) -> Any:
    counter = {"n": 0}

    def make(**extra: Any) -> Customer:
        counter["n"] += 1
        extra.setdefault("name", f"Customer {counter['n']}")
        extra.setdefault("email", f"c{counter['n']}@example.com")
        return services.customer_create(**extra)

    return make
