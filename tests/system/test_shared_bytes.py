"""Shared bytes carry no visitor: every shared surface, built by one visitor with a pending flash message, a session
and a CSRF cookie, is served byte for byte to another visitor, with no message text, user name or token in it."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from bazaar.core import cache, surfaces


@pytest.fixture
def world(db: Any, make_user: Any) -> dict[str, Any]:
    from bazaar.rentals.services import title_create
    from bazaar.storefront.services import product_create, vendor_signup
    from bazaar.trading.services import import_csv

    shop = vendor_signup(
        username="visible-vendor",
        password="Tamarind-Kettle-Orbit-42",
        email="vv@example.com",
        shop_name="Visitor Shop",
        slug="visitor-shop",
    )
    product_create(owner=shop.owner, name="Tea", mrp=Decimal("12"), price=Decimal("10"), stock=5)
    title = title_create(title="Shared Bytes", author="Bazaar", copies=1)
    import_csv(
        source=io.BytesIO(b"id,firstName,lastName,dateOfBirth\nsb01,Ash,Ketchum,01-01-1990\n"),
        kind="trainers",
    )
    make_user("zelda-the-visitor", password="Lantern-Quarry-Basil-77")
    return {"title": title.pk}


def _urls(world: dict[str, Any]) -> list[str]:
    samples = {
        "core.home": "/",
        "storefront.store_page": "/s/visitor-shop/",
        "rentals.catalogue_page": "/rentals/",
        "rentals.catalogue_json": "/api/rentals/titles",
        "rentals.title_page": f"/rentals/titles/{world['title']}/",
        "rentals.title_json": f"/api/rentals/titles/{world['title']}",
        "trading.trainer_page": "/trading/",
        "trading.trainers_json": "/api/trading/trainers",
        "trading.pokemon_json": "/api/trading/pokemon",
    }
    shared = {s.name for s in surfaces.all_surfaces() if s.shared}
    assert shared == set(samples), "a new shared surface needs a URL here"
    return list(samples.values())


def test_shared_surfaces_carry_no_visitor(world: dict[str, Any]) -> None:
    first = Client(enforce_csrf_checks=True)
    # Sign in and out: the session now holds a pending "signed out" message and a CSRF cookie.
    login = first.get("/accounts/login/")
    assert login.status_code == 200
    r = first.post(
        "/accounts/login/",
        {
            "username": "zelda-the-visitor",
            "password": "Lantern-Quarry-Basil-77",
            "csrfmiddlewaretoken": login.cookies["csrftoken"].value,
        },
    )
    assert r.status_code == 302
    r = first.post("/accounts/logout/", {"csrfmiddlewaretoken": first.cookies["csrftoken"].value})
    assert r.status_code == 302
    first_csrf = first.cookies["csrftoken"].value
    second = Client()
    second.get("/accounts/login/")  # a CSRF cookie of its own
    second_csrf = second.cookies["csrftoken"].value
    assert first_csrf != second_csrf

    for url in _urls(world):
        cache.set_prefix(cache.new_test_prefix())  # cold: the first visitor's request builds the entry
        a = first.get(url)
        b = second.get(url)
        assert a.status_code == b.status_code == 200, url
        assert a.content == b.content, f"{url}: visitors got different bytes"
        body = a.content.decode()
        for secret in ("signed out", "zelda-the-visitor", first_csrf, second_csrf, "csrfmiddlewaretoken"):
            assert secret not in body, f"{url} carries {secret!r}"
        assert b.get("X-Cache", "hit") == "hit" or b.has_header("ETag"), url
