"""The store for phones: product cards, search, categories with counts, keyset pages, the cookie cart (no
JavaScript needed), checkout on the shop's page with inline errors, and the customer's order page with its
timeline in the shop's time zone."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from bazaar.storefront import services
from bazaar.storefront.models import Order, OrderEvent, Product

pytestmark = pytest.mark.django_db


def _names(body: bytes) -> list[str]:
    return re.findall(r'<li class="product" data-product="([^"]+)"', body.decode())


def test_cards_show_price_mrp_discount_and_stock_state(
    client: Client, vendor: Any, make_product: Any
) -> None:
    make_product(vendor, "Tea", price="75.00", mrp="100.00", stock=50)
    make_product(vendor, "Salt", price="20.00", mrp="20.00", stock=3)
    make_product(vendor, "Saffron", stock=0)
    make_product(vendor, "Pepper", is_available=False)
    body = client.get("/s/vera-spices/").content.decode()
    tea = body[body.index('data-product="Tea"') :].split("</li>")[0]
    assert "INR 75.00" in tea
    assert ">100.00</s>" in tea
    assert "25% off" in tea
    assert "In stock" in tea
    assert 'type="number" name="qty"' in tea
    salt = body[body.index('data-product="Salt"') :].split("</li>")[0]
    assert "Only 3 left" in salt
    assert "% off" not in salt
    assert "<s class" not in salt
    saffron = body[body.index('data-product="Saffron"') :].split("</li>")[0]
    assert "Out of stock" in saffron
    assert "Add to cart" not in saffron
    assert "Unavailable" in body[body.index('data-product="Pepper"') :].split("</li>")[0]


def test_search_and_categories_with_counts(client: Client, vendor: Any, make_product: Any) -> None:
    make_product(vendor, "Assam Tea", category="Tea")
    make_product(vendor, "Green Tea", category="Tea", description="from Darjeeling")
    make_product(vendor, "Black Pepper", category="Spices")
    make_product(vendor, "Honey")
    body = client.get("/s/vera-spices/").content.decode()
    assert re.search(r'>All <span class="count">4</span>', body)
    assert re.search(r'href="/s/vera-spices/\?c=Spices">Spices <span class="count">1</span>', body)
    assert re.search(r'>Tea <span class="count">2</span>', body)
    assert _names(client.get("/s/vera-spices/?c=Tea").content) == ["Assam Tea", "Green Tea"]
    assert _names(client.get("/s/vera-spices/?q=tea").content) == ["Assam Tea", "Green Tea"]
    assert _names(client.get("/s/vera-spices/?q=darjeeling").content) == ["Green Tea"]
    r = client.get("/s/vera-spices/?q=tea&c=Spices")
    assert _names(r.content) == []
    assert b"Nothing matches" in r.content
    assert _names(client.get("/s/vera-spices/?q=%00pep%01per").content) == ["Black Pepper"]


def test_a_5000_product_shop_renders_one_keyset_page_at_a_time(client: Client, vendor: Any) -> None:
    Product.objects.bulk_create(
        [Product(shop=vendor.shop, name=f"Item {i:04d}", mrp=10, price=9, stock=9) for i in range(5000)]
    )
    seen: list[str] = []
    url = "/s/vera-spices/"
    for _ in range(3):
        body = client.get(url).content
        page = _names(body)
        assert len(page) == 24
        seen += page
        url = re.search(rb'href="([^"]+)" rel="next"', body).group(1).decode().replace("&amp;", "&")  # type: ignore[union-attr]
    assert seen == [f"Item {i:04d}" for i in range(72)]
    assert len(client.get("/s/vera-spices/").content) < 40_000


def test_the_last_page_has_no_next_link_and_a_bad_cursor_is_422(client: Client, vendor: Any) -> None:
    Product.objects.bulk_create(
        [Product(shop=vendor.shop, name=f"P{i:02d}", mrp=1, price=1) for i in range(30)]
    )
    first = client.get("/s/vera-spices/").content
    nxt = re.search(rb'href="([^"]+)" rel="next"', first).group(1).decode()  # type: ignore[union-attr]
    second = client.get(nxt).content
    assert _names(second) == [f"P{i:02d}" for i in range(24, 30)]
    assert b'rel="next"' not in second
    for bad in ("x", "W10", "WyJhIiwgLTFd", "WyJhIiwxLDJd"):
        r = client.get(f"/s/vera-spices/?after={bad}")
        assert r.status_code == 422, bad
        assert b"This page link is broken" in r.content


def _cart(client: Client) -> str:
    return client.get("/s/vera-spices/cart/").content.decode()


def test_the_cart_works_without_javascript(client: Client, vendor: Any, make_product: Any) -> None:
    tea = make_product(vendor, "Tea", price="90.00", stock=5)
    salt = make_product(vendor, "Salt", price="20.00", stock=50)
    assert "Your cart is empty" in _cart(client)
    r = client.post("/s/vera-spices/cart/", {"op": "add", "product": tea.pk, "qty": "2"})
    assert (r.status_code, r["Location"]) == (303, "/s/vera-spices/cart/")
    client.post("/s/vera-spices/cart/", {"op": "add", "product": salt.pk})
    client.post("/s/vera-spices/cart/", {"op": "add", "product": tea.pk, "qty": "1"})
    page = _cart(client)
    assert 'id="cart-total">INR 290.00<' in page  # 3 × 90 + 20
    # The stepper: set tea to 1, the + of a line at its stock is disabled.
    client.post("/s/vera-spices/cart/", {"op": "set", "product": tea.pk, "qty": "1"})
    assert 'id="cart-total">INR 110.00<' in _cart(client)
    client.post("/s/vera-spices/cart/", {"op": "set", "product": salt.pk, "qty": "0"})
    assert 'id="cart-total">INR 90.00<' in _cart(client)
    assert Order.objects.count() == 0


CART_ERRORS = {
    "invalid_quantity": "Quantities must be whole numbers.",
    "unknown_product": "That product is not sold here.",
    "invalid_cart_op": "The cart can add a product or set its quantity, nothing else.",
}


def _cart_error(r: Any) -> tuple[str, str]:
    """The cart page's refusal: (data-code, message) of its ``order-error``."""
    found = re.search(r'id="order-error" data-code="([^"]*)">([^<]*)<', r.content.decode())
    assert found, r.content.decode()
    return found.group(1), found.group(2)


@pytest.mark.parametrize(
    ("post", "code"),
    [
        ({"op": "add", "product": "x"}, "unknown_product"),
        ({"op": "add", "product": "1", "qty": "-1"}, "invalid_quantity"),
        ({"op": "add", "product": "1", "qty": "2.5"}, "invalid_quantity"),
        ({"op": "drop", "product": "1"}, "invalid_cart_op"),
        ({"op": "add", "product": "999999"}, "unknown_product"),
        ({"op": "add", "product": "99999999999999999999999"}, "unknown_product"),
    ],
)
def test_a_bad_cart_change_is_422_and_leaves_the_cart(
    client: Client, vendor: Any, other_vendor: Any, make_product: Any, post: dict[str, str], code: str
) -> None:
    tea = make_product(vendor, "Tea", stock=5)
    client.post("/s/vera-spices/cart/", {"op": "add", "product": tea.pk})
    before = client.cookies[f"cart{vendor.shop.pk}"].value
    r = client.post("/s/vera-spices/cart/", {**post, "product": post["product"].replace("1", str(tea.pk), 1)})
    if post["product"] == "999999":
        r = client.post("/s/vera-spices/cart/", post)
    assert r.status_code == 422
    assert b'id="order-error"' in r.content
    assert _cart_error(r) == (code, CART_ERRORS[code])
    assert "Nothing was ordered or charged." in r.content.decode()
    assert client.cookies[f"cart{vendor.shop.pk}"].value == before
    assert "set-cookie" not in {k.lower() for k in r.headers}
    assert Order.objects.count() == 0


@pytest.mark.parametrize("product", ["x", "99999999999999999999999"])
def test_a_bad_product_id_in_the_cart_is_an_unknown_product(
    client: Client, vendor: Any, make_product: Any, product: str
) -> None:
    make_product(vendor, "Tea", stock=5)
    r = client.post("/s/vera-spices/cart/", {"op": "add", "product": product})
    assert r.status_code == 422
    assert _cart_error(r) == ("unknown_product", CART_ERRORS["unknown_product"])
    assert f"cart{vendor.shop.pk}" not in client.cookies


def test_an_unknown_cart_op_does_not_blame_the_product(
    client: Client, vendor: Any, make_product: Any
) -> None:
    tea = make_product(vendor, "Tea", stock=5)
    r = client.post("/s/vera-spices/cart/", {"op": "drop", "product": tea.pk})
    assert r.status_code == 422
    assert _cart_error(r) == ("invalid_cart_op", CART_ERRORS["invalid_cart_op"])
    assert f"cart{vendor.shop.pk}" not in client.cookies


def test_another_shops_product_cannot_enter_the_cart(
    client: Client, vendor: Any, other_vendor: Any, make_product: Any
) -> None:
    theirs = make_product(other_vendor, "Oolong")
    r = client.post("/s/vera-spices/cart/", {"op": "add", "product": theirs.pk})
    assert r.status_code == 422
    assert _cart_error(r) == ("unknown_product", CART_ERRORS["unknown_product"])
    assert f"cart{vendor.shop.pk}" not in client.cookies


def test_a_tampered_cookie_is_ignored_not_a_500(client: Client, vendor: Any, make_product: Any) -> None:
    tea = make_product(vendor, "Tea", price="90.00", stock=5)
    client.cookies[f"cart{vendor.shop.pk}"] = f"{tea.pk}-99-0.01_abc_-1-2_{tea.pk + 1000}-1-1_9" * 3
    page = _cart(client)
    assert 'id="cart-total">INR 450.00<' in page  # lowered to the stock, the database's price


def test_checkout_with_an_error_stays_on_the_shop_page_then_succeeds(
    client: Client, vendor: Any, make_product: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tea = make_product(vendor, "Tea", price="90.00", stock=5)
    client.post("/s/vera-spices/cart/", {"op": "add", "product": tea.pk, "qty": "2"})
    form = {
        "idempotency_key": "k-1",
        f"qty_{tea.pk}": "2",
        f"price_{tea.pk}": "90.00",
        "customer_name": "Asha",
        "phone": "12",
        "address": "1 MG Road",
    }
    r = client.post("/s/vera-spices/order/", form)
    assert r.status_code == 422
    body = r.content.decode()
    assert '<span class="errorlist" id="err-phone">A phone number' in body
    assert client.cookies[f"cart{vendor.shop.pk}"].value != ""  # the cart is kept for the retry
    assert 'value="Asha"' in body
    assert "1 MG Road</textarea>" in body
    assert '<a class="brand" href="/s/vera-spices/">Vera&#x27;s Spices</a>' in body  # the shop's chrome
    assert Order.objects.count() == 0
    tea.refresh_from_db()
    assert tea.stock == 5
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/s/vera-spices/order/", {**form, "phone": "+91 98765 43210"})
    order = Order.objects.get()
    assert (r.status_code, r["Location"]) == (303, f"/s/vera-spices/orders/{order.number}/")
    assert client.cookies[f"cart{vendor.shop.pk}"].value == ""  # the cart is emptied
    page = client.get(r["Location"]).content.decode()
    assert order.number in page
    assert 'id="timeline"' in page


def test_out_of_stock_at_checkout_is_said_on_the_cart_page(
    client: Client, vendor: Any, make_product: Any
) -> None:
    tea = make_product(vendor, "Tea", price="90.00", stock=1)
    r = client.post(
        "/s/vera-spices/order/",
        {
            "idempotency_key": "k-2",
            f"qty_{tea.pk}": "3",
            "customer_name": "Asha",
            "phone": "98765 43210",
            "address": "x",
        },
    )
    assert r.status_code == 409
    assert b'data-code="out_of_stock"' in r.content
    assert Order.objects.count() == 0
    tea.refresh_from_db()
    assert tea.stock == 1


def test_the_order_page_has_a_timeline_in_the_shops_time_zone(
    client: Client, vendor: Any, make_product: Any
) -> None:
    import datetime as dt

    tea = make_product(vendor, "Tea", stock=5)
    order = services.order_place(
        slug="vera-spices",
        lines=[services.OrderLine(tea.pk, 1, None)],
        customer_name="Asha",
        phone="98765 43210",
        address="x",
        idempotency_key="k-3",
    ).order
    Order.objects.filter(pk=order.pk).update(created_at=dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC))
    services.order_set_status(owner=vendor, order_id=order.pk, status="confirmed")
    services.order_set_payment(owner=vendor, order_id=order.pk, payment_status="paid")
    events = list(OrderEvent.objects.filter(order=order).values_list("kind", "value", "actor"))
    assert events == [("status", "confirmed", "vera"), ("payment", "paid", "vera")]
    body = client.get(f"/s/vera-spices/orders/{order.number}/").content.decode()
    assert "1 Dec 2026, 15:30</time> <strong>Placed</strong>" in body  # 10:00 UTC is 15:30 in India
    assert '<strong>Confirmed</strong> <span class="muted">by vera</span>' in body
    assert "<strong>Payment paid</strong>" in body
    assert "Times are in Asia/Kolkata time (IST)" in body
    missing = client.get("/s/vera-spices/orders/BZ-NOPE/")
    assert missing.status_code == 404
    assert "We could not find that page" in missing.content.decode()


def test_a_cache_miss_of_a_5000_product_store_costs_a_fixed_number_of_queries(
    client: Client, vendor: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """One page of 24 out of 5,000 products, built on a miss: the shop, the page, the category counts — three
    queries however many products the shop has (no query per card, no count over all rows in Python)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert client.get("/s/vera-spices/").status_code == 200  # the cache connection is open (and settled)
    with django_capture_on_commit_callbacks(execute=True):
        Product.objects.bulk_create(
            [
                Product(
                    shop=vendor.shop, name=f"Item {i:04d}", mrp=10, price=9, stock=9, category=f"C{i % 7}"
                )
                for i in range(5000)
            ]
        )
    with CaptureQueriesContext(connection) as queries:  # bulk_create dropped the page: a miss
        r = client.get("/s/vera-spices/")
    assert r.status_code == 200
    assert r["X-Cache"] == "miss"
    assert len(_names(r.content)) == 24
    sqls = [q["sql"] for q in queries.captured_queries]
    assert len(sqls) <= 3, sqls
    assert any("LIMIT 25" in s for s in sqls), sqls  # the page reads 24 rows (and one to know there is more)
    with CaptureQueriesContext(connection) as queries:
        hit = client.get("/s/vera-spices/")
    assert (hit["X-Cache"], hit.content) == ("hit", r.content)
    assert queries.captured_queries == []
