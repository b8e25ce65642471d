"""The public page is never stale after a write commits: one test per kind of change, the fast path, the
stale-set race (a rebuild that started before a write), and the TTL backstop setting."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.core.wsgi import get_wsgi_application
from django.test import Client

from bazaar.accounts.models import User
from bazaar.core import cache
from bazaar.core.fastpath import FastPath
from bazaar.core.testing import wsgi_call
from bazaar.storefront import services
from bazaar.storefront.cache import PAGE_VARIANT, store_scope
from bazaar.storefront.models import Product
from bazaar.storefront.views.public import render_store

pytestmark = pytest.mark.django_db(transaction=True)


def _page(client: Client, slug: str = "vera-spices") -> tuple[bytes, str]:
    r = client.get(f"/s/{slug}/")
    assert r.status_code == 200
    return r.content, r["X-Cache"]


def _warm(client: Client) -> bytes:
    body, _ = _page(client)
    again, state = _page(client)
    assert (again, state) == (body, "hit")
    return body


CHANGES: list[tuple[str, Callable[[User, Product], object], bytes]] = [
    (
        "create",
        lambda u, p: services.product_create(owner=u, name="Fresh Mint", mrp="10", price="9", stock=1),
        b"Fresh Mint",
    ),
    (
        "edit price",
        lambda u, p: services.product_update(owner=u, product_id=p.pk, price=Decimal("77.00")),
        b"77.00",
    ),
    (
        "rename",
        lambda u, p: services.product_update(owner=u, product_id=p.pk, name="Masala Chai"),
        b"Masala Chai",
    ),
    ("stock edit", lambda u, p: services.product_update(owner=u, product_id=p.pk, stock=2), b"Only 2 left"),
    ("toggle", lambda u, p: services.product_toggle_available(owner=u, product_id=p.pk), b"Unavailable"),
    (
        "unlist",
        lambda u, p: services.product_update(owner=u, product_id=p.pk, is_listed=False),
        b"no products yet",
    ),
    ("delete", lambda u, p: services.product_delete(owner=u, product_id=p.pk), b"no products yet"),
    (
        "order",
        lambda u, p: services.order_place(
            slug="vera-spices",
            lines=[services.OrderLine(p.pk, 7)],
            customer_name="A",
            phone="1234567",
            address="x",
        ),
        b"Only 3 left",
    ),
    (
        "shop rename",
        lambda u, p: services.shop_update(owner=u, name="Vera Masala House"),
        b"Vera Masala House",
    ),
]


@pytest.mark.parametrize(("label", "change", "expected"), CHANGES, ids=[c[0] for c in CHANGES])
def test_each_change_shows_on_the_next_request(
    client: Client, vendor: User, make_product: Any, label: str, change: Any, expected: bytes
) -> None:
    product = make_product(vendor, stock=10)
    before = _warm(client)
    assert expected not in before
    change(vendor, product)
    after, state = _page(client)
    assert state == "miss"
    assert expected in after


def test_cancel_returns_stock_to_the_page(client: Client, vendor: User, make_product: Any) -> None:
    p = make_product(vendor, stock=10)
    order = services.order_place(
        slug="vera-spices",
        lines=[services.OrderLine(p.pk, 8)],
        customer_name="A",
        phone="1234567",
        address="x",
    ).order
    assert b"Only 2 left" in _warm(client)
    services.order_set_status(owner=vendor, order_id=order.pk, status="cancelled")
    assert b"In stock" in _page(client)[0]
    assert b"Only 2 left" not in _page(client)[0]


def test_slug_change_invalidates_old_and_new(
    client: Client, vendor: User, make_product: Any, other_vendor: User
) -> None:
    make_product(vendor)
    _warm(client)
    services.shop_update(owner=vendor, slug="vera-new")
    r = client.get("/s/vera-spices/")
    assert (r.status_code, r["Location"]) == (301, "/s/vera-new/")
    assert b"Vera" in _page(client, "vera-new")[0]
    assert cache.peek(store_scope("vera-spices"), PAGE_VARIANT) is None


def test_write_inside_uncommitted_transaction_is_not_shown_early_nor_missed(
    client: Client, vendor: User, make_product: Any
) -> None:
    from django.db import transaction

    p = make_product(vendor)
    _warm(client)
    with transaction.atomic():
        services.product_update(owner=vendor, product_id=p.pk, name="Later Name")
        # The bump waits for the commit: the cached (committed) page is still what is served.
        assert cache.peek(store_scope("vera-spices"), PAGE_VARIANT) is not None
    assert b"Later Name" in _page(client)[0]


def test_rebuild_that_started_before_a_write_is_never_served_after_it(
    vendor: User, make_product: Any, client: Client
) -> None:
    """A request reads the generation and the database, then a write commits, then the request stores its
    (stale) bytes: the next request must not get them."""
    p = make_product(vendor, name="Old Name")
    scope = store_scope("vera-spices")

    def slow_build() -> bytes:
        stale = render_store("vera-spices")  # read before the write
        services.product_update(owner=vendor, product_id=p.pk, name="New Name")  # the write commits here
        return stale

    got = cache.get_or_build(scope, PAGE_VARIANT, slow_build)
    assert b"Old Name" in got.body  # the slow request itself answered with what it read
    body, state = _page(client)
    assert state == "miss"
    assert b"New Name" in body
    assert b"Old Name" not in body


def _wsgi(app: FastPath, path: str, **extra: str) -> tuple[str, dict[str, str], bytes]:
    return wsgi_call(app, path, **extra)


def test_fast_path_serves_the_views_bytes_and_follows_invalidation(
    client: Client, vendor: User, make_product: Any
) -> None:
    p = make_product(vendor)
    app = FastPath(get_wsgi_application())
    first = client.get("/s/vera-spices/")
    status, headers, body = _wsgi(app, "/s/vera-spices/")
    assert (status, headers["X-Cache"], body) == ("200 OK", "hit", first.content)
    assert headers["ETag"] == first["ETag"]
    assert headers["Cache-Control"] == first["Cache-Control"]
    assert _wsgi(app, "/s/vera-spices/", HTTP_IF_NONE_MATCH=first["ETag"])[0] == "304 Not Modified"
    services.product_toggle_available(owner=vendor, product_id=p.pk)
    status, headers, body = _wsgi(app, "/s/vera-spices/")
    assert headers["X-Cache"] == "miss"  # went to Django, which rebuilt it
    assert b"Unavailable" in body
    assert _wsgi(app, "/s/vera-spices/")[1]["X-Cache"] == "hit"


def test_ttl_backstop_is_configurable(
    settings: Any, vendor: User, make_product: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bazaar.storefront import conf

    assert conf.page_ttl() == 900
    settings.STOREFRONT_PAGE_TTL = 60
    seen: list[int | None] = []
    original = cache.get_or_build

    def spy(scope: Any, variant: str, build: Any, *, ttl: int | None = None) -> Any:
        seen.append(ttl)
        return original(scope, variant, build, ttl=ttl)

    monkeypatch.setattr(cache, "get_or_build", spy)
    client.get("/s/vera-spices/")
    assert seen == [60]


def _order(product: Product, quantity: int) -> None:
    services.order_place(
        slug="vera-spices",
        lines=[services.OrderLine(product.pk, quantity)],
        customer_name="A",
        phone="1234567",
        address="x",
    )


@pytest.mark.parametrize(
    ("stock", "quantity", "dropped", "shows"),
    [
        (50, 1, False, b"In stock"),  # 50 -> 49: the page reads the same, its bytes stay cached
        (7, 1, False, b"In stock"),  # 7 -> 6: still above the low-stock threshold (5)
        (6, 1, True, b"Only 5 left"),  # crosses into low stock
        (5, 1, True, b"Only 4 left"),  # low stock shows the count: every order changes it
        (2, 2, True, b"Out of stock"),
    ],
)
def test_an_order_drops_the_cached_page_only_when_the_page_changes(
    client: Client, vendor: User, make_product: Any, stock: int, quantity: int, dropped: bool, shows: bytes
) -> None:
    product = make_product(vendor, stock=stock)
    before = _warm(client)
    _order(product, quantity)
    after, state = _page(client)
    assert state == ("miss" if dropped else "hit")
    assert shows in after
    assert (after == before) is not dropped
    # And the bytes served are what a fresh render says: never stale.
    assert after == render_store("vera-spices")
