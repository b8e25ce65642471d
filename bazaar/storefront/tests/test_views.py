"""Storefront pages: the vendor's pages (CSRF, isolation), the public page (cached, 304, 301, constant queries)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from bazaar.accounts.models import User
from bazaar.core.testing import assert_page_refused
from bazaar.storefront import services
from bazaar.storefront.models import Order, Product, Shop
from bazaar.storefront.tests.conftest import store_state, writes_nothing

pytestmark = pytest.mark.django_db

#: What the site's 404 page (templates/404.html) and Django's CSRF refusal say.
NOT_FOUND_PAGE = "We could not find that page"
CSRF_REFUSED = "CSRF verification failed"


def _login(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def test_anonymous_dashboard_offers_signup_and_login(client: Client) -> None:
    r = client.get("/storefront/")
    assert r.status_code == 200
    assert b"/storefront/signup/" in r.content
    assert b"/accounts/login/?next=/storefront/" in r.content


def test_vendor_signup_page_creates_shop_and_logs_in(client: Client) -> None:
    r = client.post(
        "/storefront/signup/",
        {
            "username": "nina",
            "email": "n@example.com",
            "password": "a-long-secret-42",
            "password_again": "a-long-secret-42",
            "shop_name": "Nina Sweets",
            "slug": "",
            "currency": "INR",
        },
    )
    assert r.status_code == 302, r.content
    assert Shop.objects.get().slug == "nina-sweets"
    r = client.get("/storefront/")
    assert b"/s/nina-sweets/" in r.content


def test_vendor_signup_errors_write_nothing(client: Client, vendor: User) -> None:
    before = store_state()
    r = client.post(
        "/storefront/signup/",
        {
            "username": "nina",
            "email": "n@example.com",
            "password": "a-long-secret-42",
            "password_again": "a-long-secret-42",
            "shop_name": "X",
            "slug": "vera-spices",
            "currency": "INR",
        },
    )
    assert r.status_code == 400
    assert b"That link is taken" in r.content
    assert not User.objects.filter(username="nina").exists()
    assert store_state() == before
    assert "_auth_user_id" not in client.session


def test_vendor_forms_are_csrf_protected(vendor: User, make_product: Any) -> None:
    p = make_product(vendor)
    client = Client(enforce_csrf_checks=True)
    client.force_login(vendor)
    before = store_state()
    assert_page_refused(client.post(f"/storefront/products/{p.pk}/toggle/"), 403, CSRF_REFUSED)
    r = client.post("/storefront/products/new/", {"name": "X", "mrp": "1", "price": "1", "stock": "1"})
    assert_page_refused(r, 403, CSRF_REFUSED)
    assert store_state() == before
    p.refresh_from_db()
    assert p.is_available is True
    assert Product.objects.count() == 1


def test_dashboard_with_chart_and_low_stock(client: Client, vendor: User, make_product: Any) -> None:
    p = make_product(vendor, stock=2)
    services.order_place(
        slug="vera-spices",
        lines=[services.OrderLine(p.pk, 1)],
        customer_name="A",
        phone="1234567",
        address="x",
    )
    r = _login(client, vendor).get("/storefront/")
    assert r.status_code == 200
    assert b"<svg" in r.content
    assert b"1 orders" in r.content
    assert b'id="low-stock"' in r.content
    r = client.get("/storefront/chart.svg")
    assert r["Content-Type"] == "image/svg+xml"
    assert r.content.startswith(b"<svg")


def test_product_pages_and_toggle(client: Client, vendor: User) -> None:
    _login(client, vendor)
    with writes_nothing():
        r = client.post(
            "/storefront/products/new/",
            {
                "name": "Tea",
                "mrp": "100",
                "price": "120",
                "stock": "3",
                "is_listed": "on",
                "is_available": "on",
            },
        )
    assert r.status_code == 400
    assert b"cannot be above the MRP" in r.content
    assert not Product.objects.exists()
    r = client.post(
        "/storefront/products/new/",
        {"name": "Tea", "mrp": "100", "price": "90", "stock": "3", "is_listed": "on", "is_available": "on"},
    )
    assert r.status_code == 302
    p = Product.objects.get()
    client.post(f"/storefront/products/{p.pk}/toggle/")
    p.refresh_from_db()
    assert p.is_available is False
    r = client.post(
        f"/storefront/products/{p.pk}/edit/",
        {"name": "Green Tea", "mrp": "100", "price": "80", "stock": "5", "is_listed": "on"},
    )
    assert r.status_code == 302
    p.refresh_from_db()
    assert (p.name, p.price, p.stock, p.is_available) == ("Green Tea", Decimal(80), 5, False)
    assert b"Green Tea" in client.get("/storefront/products/").content


def test_every_vendor_page_is_404_for_another_shops_data(
    client: Client, vendor: User, other_vendor: User, make_product: Any
) -> None:
    theirs = make_product(other_vendor)
    order = services.order_place(
        slug="otto-tea",
        lines=[services.OrderLine(theirs.pk, 1)],
        customer_name="A",
        phone="1234567",
        address="x",
    ).order
    _login(client, vendor)
    pages = [
        ("get", f"/storefront/products/{theirs.pk}/edit/", None),
        (
            "post",
            f"/storefront/products/{theirs.pk}/edit/",
            {"name": "Mine", "mrp": "1", "price": "1", "stock": "1"},
        ),
        ("post", f"/storefront/products/{theirs.pk}/toggle/", None),
        ("post", f"/storefront/products/{theirs.pk}/delete/", None),
        ("get", f"/storefront/orders/{order.pk}/", None),
        ("post", f"/storefront/orders/{order.pk}/status/", {"status": "cancelled"}),
        ("post", f"/storefront/orders/{order.pk}/payment/", {"payment_status": "paid"}),
    ]
    for method, path, data in pages:
        with writes_nothing():
            r = getattr(client, method)(path, data or {})
        assert r.status_code == 404, (method, path)
        assert_page_refused(r, 404, NOT_FOUND_PAGE)
    assert order.number.encode() not in client.get("/storefront/orders/").content
    assert b"Tea" not in client.get("/storefront/products/").content
    export = client.get("/storefront/orders.csv")
    assert order.number.encode() not in b"".join(export.streaming_content)  # type: ignore[attr-defined]
    theirs.refresh_from_db()
    order.refresh_from_db()
    assert (theirs.name, theirs.is_available, theirs.is_archived, order.status, order.payment_status) == (
        "Tea",
        True,
        False,
        "placed",
        "pending",
    )


def test_vendor_pages_need_login(client: Client) -> None:
    for path in (
        "/storefront/products/",
        "/storefront/orders/",
        "/storefront/orders.csv",
        "/storefront/shop/",
    ):
        r = client.get(path)
        assert r.status_code == 302
        assert r["Location"].startswith("/accounts/login/")
        assert r["Location"] == f"/accounts/login/?next={path}"


def test_orders_page_filter_detail_and_status_change(client: Client, vendor: User, make_product: Any) -> None:
    p = make_product(vendor, stock=4)
    o1 = services.order_place(
        slug="vera-spices",
        lines=[services.OrderLine(p.pk, 1)],
        customer_name="Asha",
        phone="1234567",
        address="x",
    ).order
    o2 = services.order_place(
        slug="vera-spices",
        lines=[services.OrderLine(p.pk, 2)],
        customer_name="Ravi",
        phone="1234567",
        address="y",
    ).order
    _login(client, vendor)
    content = client.get("/storefront/orders/").content
    assert content.index(o2.number.encode()) < content.index(o1.number.encode())  # newest first
    client.post(f"/storefront/orders/{o1.pk}/status/", {"status": "confirmed"})
    assert o2.number.encode() not in client.get("/storefront/orders/?status=confirmed").content
    assert o1.number.encode() in client.get("/storefront/orders/?status=confirmed").content
    with writes_nothing():
        r = client.post(f"/storefront/orders/{o1.pk}/status/", {"status": "delivered"}, follow=True)
    assert b"cannot become delivered" in r.content
    assert r.redirect_chain == [(f"/storefront/orders/{o1.pk}/", 302)]
    o1.refresh_from_db()
    assert o1.status == "confirmed"
    assert b"Mark shipped" in client.get(f"/storefront/orders/{o1.pk}/").content


def test_csv_export_streams_all_orders_safely(client: Client, vendor: User, make_product: Any) -> None:
    p = make_product(vendor)
    services.order_place(
        slug="vera-spices",
        lines=[services.OrderLine(p.pk, 2)],
        customer_name="=HYPERLINK(1)",
        phone="1234567",
        address="a\nb",
    )
    r = _login(client, vendor).get("/storefront/orders.csv")
    assert r.streaming
    lines = b"".join(r.streaming_content).decode().splitlines()  # type: ignore[attr-defined]
    assert lines[0].startswith("number,created_at,status")
    assert "'=HYPERLINK(1)" in lines[1]
    assert "2 x Tea @ 90.00" in lines[1]
    assert len(lines) == 2


def test_shop_settings_slug_change_redirects_old_link(client: Client, vendor: User) -> None:
    _login(client, vendor)
    r = client.post("/storefront/shop/", {"name": "Vera Masala", "slug": "vera-masala", "currency": "INR"})
    assert r.status_code == 302
    anon = Client()
    r = anon.get("/s/vera-spices/")
    assert (r.status_code, r["Location"]) == (301, "/s/vera-masala/")
    assert b"Vera Masala" in anon.get("/s/vera-masala/").content


# --- public page ---------------------------------------------------------------------------------------------


def test_store_page_cached_etag_304_and_headers(client: Client, vendor: User, make_product: Any) -> None:
    make_product(vendor, stock=3)
    make_product(vendor, name="Coffee", is_available=False)
    make_product(vendor, name="Secret", is_listed=False)
    r = client.get("/s/vera-spices/")
    assert r.status_code == 200
    assert r["X-Cache"] == "miss"
    assert r["Cache-Control"] == "public, max-age=0, must-revalidate"
    body = r.content
    assert b"Only 3 left" in body
    assert b"Unavailable" in body
    assert b"Secret" not in body
    assert b"csrfmiddlewaretoken" not in body  # identical for every visitor
    r2 = client.get("/s/vera-spices/")
    assert (r2["X-Cache"], r2.content) == ("hit", body)
    r3 = client.get("/s/vera-spices/", HTTP_IF_NONE_MATCH=r["ETag"])
    assert r3.status_code == 304
    assert r3.content == b""


def test_store_page_is_identical_for_signed_in_users(client: Client, vendor: User, make_product: Any) -> None:
    make_product(vendor)
    anon = client.get("/s/vera-spices/").content
    client.force_login(vendor)
    assert client.get("/s/vera-spices/").content == anon


def test_unknown_store_404(client: Client, db: Any) -> None:
    assert_page_refused(client.get("/s/nope-shop/"), 404, NOT_FOUND_PAGE)
    with writes_nothing():  # and an order to it
        r = client.post("/s/nope-shop/order/", {"customer_name": "A", "phone": "1234567", "address": "x"})
    assert_page_refused(r, 404, NOT_FOUND_PAGE)


@pytest.mark.parametrize("count", [1, 50])
def test_uncached_store_page_makes_constant_queries(
    client: Client, vendor: User, settings: Any, django_assert_num_queries: Any, count: int
) -> None:
    settings.STOREFRONT_CACHE_ENABLED = False
    Product.objects.bulk_create(
        [Product(shop=vendor.shop, name=f"P{i}", mrp=10, price=9, stock=i) for i in range(count)]
    )
    # The shop, one keyset page of products, the category counts: the same three whatever the shop's size.
    with django_assert_num_queries(3):
        r = client.get("/s/vera-spices/")
    assert r.status_code == 200
    assert r.content.count(b"data-product=") == min(count, 24)
    assert "X-Cache" in r
    assert r["X-Cache"] == "miss"


def test_order_form_flow(
    client: Client,
    vendor: User,
    make_product: Any,
    mailoutbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    tea = make_product(vendor, stock=5)
    coffee = make_product(vendor, name="Coffee", price="250.00", mrp="300.00", stock=5)
    form = {
        "idempotency_key": "3f1c2c1e-aaaa",
        f"qty_{tea.pk}": "2",
        f"price_{tea.pk}": "90.00",
        f"qty_{coffee.pk}": "0",
        f"price_{coffee.pk}": "250.00",
        "customer_name": "Asha",
        "phone": "+91 98765 43210",
        "address": "1 MG Road",
    }
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/s/vera-spices/order/", form)
    assert r.status_code == 303
    order = Order.objects.get()
    assert r["Location"] == f"/s/vera-spices/orders/{order.number}/"
    page = client.get(r["Location"])
    assert order.number.encode() in page.content
    assert page["Cache-Control"] == "private, no-store"
    assert len(mailoutbox) == 1
    # A double submit (same hidden key) lands on the same order.
    r = client.post("/s/vera-spices/order/", form)
    assert r["Location"] == f"/s/vera-spices/orders/{order.number}/"
    assert Order.objects.count() == 1
    tea.refresh_from_db()
    assert tea.stock == 3


def test_order_form_out_of_stock_shows_message_and_writes_nothing(
    client: Client, vendor: User, make_product: Any
) -> None:
    tea = make_product(vendor, stock=1)
    with writes_nothing():
        r = client.post(
            "/s/vera-spices/order/",
            {
                "idempotency_key": "k",
                f"qty_{tea.pk}": "2",
                "customer_name": "A",
                "phone": "1234567",
                "address": "x",
            },
        )
    assert r.status_code == 409
    assert "Only 1 of “Tea” left.".encode() in r.content
    assert not Order.objects.exists()
    tea.refresh_from_db()
    assert tea.stock == 1


def test_order_form_bad_input_is_422(client: Client, vendor: User, make_product: Any) -> None:
    tea = make_product(vendor)
    before = store_state()
    r = client.post(
        "/s/vera-spices/order/",
        {f"qty_{tea.pk}": "two", "customer_name": "A", "phone": "1234567", "address": "x"},
    )
    assert r.status_code == 422
    assert_page_refused(r, 422, "Quantities must be whole numbers.")
    assert store_state() == before
    r = client.post("/s/vera-spices/order/", {"customer_name": "A", "phone": "1234567", "address": "x"})
    assert r.status_code == 422
    assert b"Choose at least one product" in r.content
    assert not Order.objects.exists()
    assert store_state() == before


def test_confirmation_of_other_shop_is_404(
    client: Client, vendor: User, other_vendor: User, make_product: Any
) -> None:
    tea = make_product(vendor)
    order = services.order_place(
        slug="vera-spices",
        lines=[services.OrderLine(tea.pk, 1)],
        customer_name="A",
        phone="1234567",
        address="x",
    ).order
    assert_page_refused(client.get(f"/s/otto-tea/orders/{order.number}/"), 404, NOT_FOUND_PAGE)
    assert_page_refused(client.get("/s/vera-spices/orders/BZ-NOPE/"), 404, NOT_FOUND_PAGE)


def test_store_page_escapes_vendor_text(client: Client, vendor: User, make_product: Any) -> None:
    make_product(vendor, name="<script>alert(1)</script>", description='"quoted" & <b>bold</b>')
    body = client.get("/s/vera-spices/").content
    assert b"<script>alert(1)" not in body
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert b"&quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;" in body


def test_empty_store_renders(client: Client, vendor: User) -> None:
    r = client.get("/s/vera-spices/")
    assert r.status_code == 200
    assert b"no products yet" in r.content


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (180, 70, 27)).save(buf, format="PNG")
    return buf.getvalue()


def test_product_image_upload(client: Client, vendor: User, settings: Any, tmp_path: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = str(tmp_path)
    _login(client, vendor)
    data = {"name": "Tea", "mrp": "100", "price": "90", "stock": "3", "is_listed": "on", "is_available": "on"}
    r = client.post(
        "/storefront/products/new/", {**data, "image": SimpleUploadedFile("tea.png", _png(), "image/png")}
    )
    assert r.status_code == 302
    product = Product.objects.get()
    assert product.image.name.startswith("storefront/products/tea")
    assert (tmp_path / product.image.name).exists()
    before = store_state()
    r = client.post(
        "/storefront/products/new/",
        {**data, "name": "Fake", "image": SimpleUploadedFile("x.png", b"not an image", "image/png")},
    )
    assert r.status_code == 400
    assert_page_refused(r, 400, "Upload a valid image.")
    assert Product.objects.count() == 1
    assert store_state() == before
