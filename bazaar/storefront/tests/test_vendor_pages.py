"""The vendor's pages finished: the link to share, empty states, confirmation steps as pages, product search and
pages, the shop's time zone."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from bazaar.storefront import services
from bazaar.storefront.models import Order, OrderEvent, Product, Shop
from bazaar.storefront.tests.conftest import place_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def vc(client: Client, vendor: Any) -> Client:
    client.force_login(vendor)
    return client


def _order(vendor: Any, make_product: Any) -> Order:
    tea = make_product(vendor, "Tea", stock=5)
    order: Order = place_order("vera-spices", tea.pk, 2).order
    return order


def test_the_dashboard_shares_an_absolute_link(vc: Client, settings: Any) -> None:
    settings.SITE_URL = "https://bazaar.example"
    body = vc.get("/storefront/").content.decode()
    assert 'id="store-url" value="https://bazaar.example/s/vera-spices/"' in body
    assert (
        'href="https://wa.me/?text=Shop+at+Vera%27s+Spices%3A+https%3A%2F%2Fbazaar.example%2Fs%2Fvera-spices%2F"'
        in body
    )
    assert '<svg width="' in body
    assert "QR code for https://bazaar.example/s/vera-spices/" in body
    assert 'id="first-product"' in body  # empty: what to do next
    assert "All products are stocked" not in body


def test_the_empty_product_list_says_what_to_do(vc: Client) -> None:
    body = vc.get("/storefront/products/").content.decode()
    assert "Add your first product" in body


def test_product_search_and_pages(vc: Client, vendor: Any) -> None:
    Product.objects.bulk_create(
        [
            Product(shop=vendor.shop, name=f"P{i:03d}", mrp=1, price=1, category="Tea" if i < 3 else "")
            for i in range(60)
        ]
    )
    first = vc.get("/storefront/products/").content.decode()
    assert first.count("<tr data-product=") == 50
    assert "Page 1 of 2 · 60 products" in first
    assert vc.get("/storefront/products/?page=2").content.decode().count("<tr data-product=") == 10
    tea = vc.get("/storefront/products/?q=tea").content.decode()
    assert tea.count("<tr data-product=") == 3
    assert "No product matches" in vc.get("/storefront/products/?q=zzz").content.decode()


def test_the_toggle_shows_the_state_and_the_action(vc: Client, vendor: Any, make_product: Any) -> None:
    p = make_product(vendor, "Tea")
    body = vc.get("/storefront/products/").content.decode()
    assert ">Available</span>" in body
    assert ">Make unavailable</button>" in body
    vc.post(f"/storefront/products/{p.pk}/toggle/")
    body = vc.get("/storefront/products/").content.decode()
    assert ">Unavailable</span>" in body
    assert ">Make available</button>" in body


def test_delete_asks_on_a_page_first(vc: Client, vendor: Any, make_product: Any) -> None:
    p = make_product(vendor, "Tea")
    r = vc.get(f"/storefront/products/{p.pk}/delete/")
    assert r.status_code == 200
    assert "Delete “Tea”?" in r.content.decode()
    assert Product.objects.filter(pk=p.pk).exists()
    assert vc.post(f"/storefront/products/{p.pk}/delete/").status_code == 302
    assert not Product.objects.filter(pk=p.pk).exists()


@pytest.mark.parametrize(
    ("url", "says", "field", "value"),
    [
        ("status/?status=cancelled", "Cancel order", "status", "cancelled"),
        ("payment/?payment_status=refunded", "Record a refund", "payment_status", "refunded"),
    ],
)
def test_cancel_and_refund_ask_on_a_page_first(
    vc: Client, vendor: Any, make_product: Any, url: str, says: str, field: str, value: str
) -> None:
    order = _order(vendor, make_product)
    if field == "payment_status":
        services.order_set_payment(owner=vendor, order_id=order.pk, payment_status="paid")
    before = (Order.objects.get(pk=order.pk).status, Order.objects.get(pk=order.pk).payment_status)
    events = OrderEvent.objects.count()
    r = vc.get(f"/storefront/orders/{order.pk}/{url}")
    assert r.status_code == 200
    body = r.content.decode()
    assert says in body
    assert f'<input type="hidden" name="{field}" value="{value}">' in body
    after = Order.objects.get(pk=order.pk)
    assert (after.status, after.payment_status) == before
    assert OrderEvent.objects.count() == events
    assert vc.post(f"/storefront/orders/{order.pk}/{url.split('?')[0]}", {field: value}).status_code == 302
    assert getattr(Order.objects.get(pk=order.pk), field) == value
    # An unknown change has no confirmation page: back to the order.
    r = vc.get(f"/storefront/orders/{order.pk}/status/?status=shipped")
    assert (r.status_code, r["Location"]) == (302, f"/storefront/orders/{order.pk}/")


def test_the_shop_time_zone_is_chosen_from_a_list(vc: Client, vendor: Any) -> None:
    form = {"name": "Vera's Spices", "slug": "vera-spices", "currency": "INR"}
    r = vc.post("/storefront/shop/", {**form, "timezone": "Mars/Olympus"})
    assert r.status_code == 400
    assert "Mars/Olympus is not one of the available choices." in r.content.decode()
    assert Shop.objects.get().timezone == "Asia/Kolkata"
    assert vc.post("/storefront/shop/", {**form, "timezone": "Europe/Berlin"}).status_code == 302
    assert Shop.objects.get().timezone == "Europe/Berlin"
    assert vc.post("/storefront/shop/", form).status_code == 302  # left empty: kept
    assert Shop.objects.get().timezone == "Europe/Berlin"


def test_the_chart_counts_days_in_the_shops_time_zone_and_says_so(
    vc: Client, vendor: Any, make_product: Any
) -> None:
    """20:00 UTC on 4 December is 01:30 on 5 December in Kolkata: the order is the 5th's for an IST shop and the
    4th's for a shop in UTC; the chart and the pages name the zone."""
    import datetime as dt

    from bazaar.storefront import selectors
    from bazaar.storefront.chart import orders_chart_svg

    order = _order(vendor, make_product)
    placed = dt.datetime(2026, 12, 4, 20, 0, tzinfo=dt.UTC)
    Order.objects.filter(pk=order.pk).update(created_at=placed)
    now = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
    shop = Shop.objects.get()

    def days(zone: str) -> dict[str, int]:
        shop.timezone = zone
        return {
            p.day.isoformat(): p.orders for p in selectors.dashboard_summary(shop, now=now).days if p.orders
        }

    assert days("Asia/Kolkata") == {"2026-12-05": 1}
    assert days("UTC") == {"2026-12-04": 1}
    assert days("America/New_York") == {"2026-12-04": 1}  # 15:00 there
    # An order just before the window opens (midnight, 30 days back, in the shop's zone) is not counted.
    shop.timezone = "Asia/Kolkata"
    first = selectors.dashboard_summary(shop, now=now).days[0].day
    assert first == dt.date(2026, 11, 6)
    Order.objects.filter(pk=order.pk).update(created_at=dt.datetime(2026, 11, 5, 18, 29, tzinfo=dt.UTC))
    assert selectors.dashboard_summary(shop, now=now).orders_total == 0
    Order.objects.filter(pk=order.pk).update(created_at=dt.datetime(2026, 11, 5, 18, 30, tzinfo=dt.UTC))
    assert days("Asia/Kolkata") == {"2026-11-06": 1}

    svg = orders_chart_svg(selectors.dashboard_summary(shop, now=now).days, "INR", shop.timezone_label)
    assert "days in Asia/Kolkata (IST)</title>" in svg
    assert ">Days in Asia/Kolkata (IST)</text>" in svg
    body = vc.get("/storefront/").content.decode()
    assert "midnight to midnight in Asia/Kolkata (IST)" in body
    assert "Times are in Asia/Kolkata (IST)." in body
    assert "Days in Asia/Kolkata (IST)" in vc.get("/storefront/chart.svg").content.decode()
    # The CSV export writes the shop's time with its offset (the order is at 18:30 UTC).
    export = b"".join(vc.get("/storefront/orders.csv").streaming_content).decode()  # type: ignore[attr-defined]
    assert ",2026-11-06T00:00:00+05:30," in export.splitlines()[1]
    Shop.objects.update(timezone="Europe/Berlin")
    assert re.search(
        r"midnight to midnight in Europe/Berlin \(CES?T\)", vc.get("/storefront/").content.decode()
    )


def test_the_store_link_help_reads_as_written(vc: Client) -> None:
    """Django renders help text as HTML: "/s/<link>/" showed as "/s//". The text says the address in words."""
    for page in (Client().get("/storefront/signup/"), vc.get("/storefront/shop/")):
        body = page.content.decode()
        help_text = re.search(r'<div class="helptext" id="id_slug_helptext">([^<]*)</div>', body)
        assert help_text, body[:2000]
        assert "/s/your-link/" in help_text.group(1)
        assert "<link>" not in body


def test_the_empty_orders_page_says_what_to_do_next(vc: Client, vendor: Any, make_product: Any) -> None:
    body = vc.get("/storefront/orders/").content.decode()
    assert "No orders yet." in body
    assert 'href="/storefront/">your dashboard</a>' in body
    assert "add your first product" in body
    make_product(vendor, "Tea")
    body = vc.get("/storefront/orders/").content.decode()
    assert "No orders yet." in body
    assert "add your first product" not in body
    body = vc.get("/storefront/orders/?status=shipped").content.decode()
    assert "No orders with this status." in body
    assert "No orders yet." not in body
