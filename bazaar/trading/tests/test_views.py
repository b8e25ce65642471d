from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from bazaar.core.testing import fast_path_only
from bazaar.trading import services


def _fast(path: str, qs: str = "") -> tuple[str, dict[str, str], bytes] | None:
    """Call only the fast path: None if the request would fall through to Django."""
    return fast_path_only(path, QUERY_STRING=qs)


@pytest.mark.django_db(transaction=True)
def test_trainer_page_cached_and_served_by_fast_path(client: Client) -> None:
    services.trainer_create(
        public_id="tr1", first_name="Ash", last_name="Ketchum", date_of_birth=dt.date(1987, 5, 22)
    )
    assert _fast("/trading/") is None  # nothing cached yet: Django answers
    first = client.get("/trading/")
    assert first.status_code == 200
    assert first["X-Cache"] == "miss"
    assert b"Ketchum" in first.content
    hit = _fast("/trading/")
    assert hit is not None
    status, headers, body = hit
    assert (status, body, headers["ETag"]) == ("200 OK", first.content, first["ETag"])
    assert _fast("/trading/", "page=1") is not None  # same entry as no page
    assert _fast("/trading/", "x=1") is None  # unusual query goes to Django
    # A write commits: the entry is invalid at once, the next view renders the new trainer.
    services.trainer_create(
        public_id="tr2", first_name="Misty", last_name="Water", date_of_birth=dt.date(1988, 7, 10)
    )
    assert _fast("/trading/") is None
    again = client.get("/trading/")
    assert again["X-Cache"] == "miss"
    assert b"Water" in again.content


@pytest.mark.django_db
def test_trainer_page_pagination_and_signed_in(client: Client, make_user: Any, settings: Any) -> None:
    settings.TRADING_PAGE_SIZE = 2
    for i in range(5):
        services.trainer_create(
            public_id=f"tr{i}", first_name="A", last_name=f"L{i}", date_of_birth=dt.date(2000, 1, 1)
        )
    r = client.get("/trading/?page=3")
    assert b"L4" in r.content
    assert b"page 3 of 3" in r.content
    assert client.get("/trading/?page=abc").status_code == 200
    client.force_login(make_user("ash"))
    r = client.get("/trading/")
    assert r["Cache-Control"] == "private, no-store"
