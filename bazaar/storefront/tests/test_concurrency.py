"""Real concurrency on PostgreSQL: 64 buyers, one product, 100 in stock; same-key races; no deadlocks."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from bazaar.accounts.models import User
from bazaar.core.errors import DomainError
from bazaar.storefront import services
from bazaar.storefront.models import Order, OrderItem, Product

#: serial: its tests hold up to 64 PostgreSQL connections at once (one per buyer thread); beside the other xdist
#: worker's threaded tests that passed max_connections (100) in CI ("sorry, too many clients already").
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.serial]


def _buy(slug: str, lines: list[services.OrderLine], key: str, start: threading.Barrier) -> str:
    start.wait()
    try:
        placed = services.order_place(
            slug=slug, lines=lines, customer_name="Buyer", phone="1234567", address="x", idempotency_key=key
        )
        return "created" if placed.created else "replayed"
    except DomainError as exc:
        return exc.code
    finally:
        connection.close()


def test_64_buyers_100_in_stock_exactly_100_orders(vendor: User, make_product: Any) -> None:
    p = make_product(vendor, stock=100)
    buyers, attempts = 64, 3  # 192 attempts of one unit for 100 units
    start = threading.Barrier(buyers)

    def buyer(n: int) -> list[str]:
        out = [_buy("vera-spices", [services.OrderLine(p.pk, 1)], f"b{n}-0", start)]
        out += [_buy_after(n, i) for i in range(1, attempts)]
        return out

    def _buy_after(n: int, i: int) -> str:
        try:
            services.order_place(
                slug="vera-spices",
                lines=[services.OrderLine(p.pk, 1)],
                customer_name="Buyer",
                phone="1234567",
                address="x",
                idempotency_key=f"b{n}-{i}",
            )
            return "created"
        except DomainError as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(buyers) as pool:
        results = Counter(r for rs in pool.map(buyer, range(buyers)) for r in rs)
    assert results == {"created": 100, "out_of_stock": buyers * attempts - 100}
    p.refresh_from_db()
    assert p.stock == 0
    assert Order.objects.count() == 100
    assert sum(OrderItem.objects.values_list("quantity", flat=True)) == 100


def test_same_key_concurrently_creates_one_order(vendor: User, make_product: Any) -> None:
    p = make_product(vendor, stock=50)
    n = 16
    start = threading.Barrier(n)
    with ThreadPoolExecutor(n) as pool:
        results = Counter(
            pool.map(lambda _: _buy("vera-spices", [services.OrderLine(p.pk, 2)], "same", start), range(n))
        )
    assert results == {"created": 1, "replayed": n - 1}
    p.refresh_from_db()
    assert p.stock == 48
    assert Order.objects.count() == 1


def test_crossing_multi_product_orders_do_not_deadlock(vendor: User, make_product: Any) -> None:
    a = make_product(vendor, name="A", stock=1000)
    b = make_product(vendor, name="B", stock=1000)
    n = 32
    start = threading.Barrier(n)

    def buy(i: int) -> str:
        lines = [services.OrderLine(a.pk, 1), services.OrderLine(b.pk, 1)]
        return _buy("vera-spices", lines[::-1] if i % 2 else lines, f"x{i}", start)

    with ThreadPoolExecutor(n) as pool:
        results = Counter(pool.map(buy, range(n)))
    assert results == {"created": n}
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.stock, b.stock) == (1000 - n, 1000 - n)


def test_cancel_racing_orders_keeps_stock_exact(vendor: User, make_product: Any) -> None:
    p = make_product(vendor, stock=40)
    first = [
        services.order_place(
            slug="vera-spices",
            lines=[services.OrderLine(p.pk, 1)],
            customer_name="A",
            phone="1234567",
            address="x",
        ).order
        for _ in range(20)
    ]
    start = threading.Barrier(40)

    def cancel(order_id: int) -> str:
        start.wait()
        try:
            services.order_set_status(owner=vendor, order_id=order_id, status="cancelled")
            return "cancelled"
        finally:
            connection.close()

    with ThreadPoolExecutor(40) as pool:
        futures = [pool.submit(cancel, o.pk) for o in first]
        futures += [
            pool.submit(_buy, "vera-spices", [services.OrderLine(p.pk, 1)], f"n{i}", start) for i in range(20)
        ]
        outcomes = Counter(f.result() for f in futures)
    assert outcomes == {"cancelled": 20, "created": 20}
    p.refresh_from_db()
    assert p.stock == 40 - 20
    assert Product.objects.filter(stock__lt=0).count() == 0


def test_page_rebuilt_by_a_request_that_started_before_a_write_is_never_served_after_it(
    vendor: User, make_product: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two real threads with their own connections: a reader starts rebuilding the page and reads the database,
    a writer commits a change, then the reader stores its (stale) bytes. Every request after the commit must
    show the change (on Redis when REDIS_URL is set: the shared cache every app server uses)."""
    from django.test import Client

    from bazaar.storefront.views import public

    p = make_product(vendor, name="Old Name")
    read_done, write_done = threading.Event(), threading.Event()
    original = public.render_store

    def slow_render(slug: str) -> bytes:
        body = original(slug)
        if threading.current_thread().name == "reader":
            read_done.set()
            assert write_done.wait(10)
        return body

    monkeypatch.setattr(public, "render_store", slow_render)
    got: dict[str, bytes] = {}

    def reader() -> None:
        try:
            got["stale"] = Client().get("/s/vera-spices/").content
        finally:
            connection.close()

    t = threading.Thread(target=reader, name="reader")
    t.start()
    assert read_done.wait(10)
    services.product_update(owner=vendor, product_id=p.pk, name="New Name")  # commits (autocommit test)
    write_done.set()
    t.join(10)
    assert b"Old Name" in got["stale"]  # the slow request answered with what it had read
    for _ in range(3):
        body = Client().get("/s/vera-spices/").content
        assert b"New Name" in body
        assert b"Old Name" not in body
