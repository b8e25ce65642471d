"""Storefront API: status codes, error codes, isolation between shops (every endpoint), idempotency header."""

from __future__ import annotations

from typing import Any

import pytest

from bazaar.accounts.models import User
from bazaar.core.testing import assert_refused
from bazaar.storefront.models import Order, Product, Shop
from bazaar.storefront.tests.conftest import writes_nothing

pytestmark = pytest.mark.django_db

ORDER = {"customer_name": "Asha", "phone": "+91 98765 43210", "address": "1 MG Road"}


def _place(api_client: Any, slug: str, product_id: int, qty: int = 1, key: str = "key-1") -> Any:
    body = {"items": [{"product_id": product_id, "quantity": qty}], **ORDER}
    return api_client.call("post", f"/api/storefront/stores/{slug}/orders", body, HTTP_IDEMPOTENCY_KEY=key)


def test_signup_returns_shop_and_token(api_client: Any) -> None:
    r = api_client.call(
        "post",
        "/api/storefront/signup",
        {
            "username": "nina",
            "password": "a-long-secret-42",
            "email": "n@example.com",
            "shop_name": "Nina Sweets",
        },
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["shop"]["slug"] == "nina-sweets"
    assert body["shop"]["url"] == "/s/nina-sweets/"
    r = api_client.call("get", "/api/storefront/shop", token=body["token"])
    assert r.json()["name"] == "Nina Sweets"


def test_signup_unknown_field_is_422_and_writes_nothing(api_client: Any) -> None:
    with writes_nothing():
        r = api_client.call(
            "post",
            "/api/storefront/signup",
            {
                "username": "nina",
                "password": "a-long-secret-42",
                "email": "n@x.com",
                "shop_name": "N",
                "admin": True,
            },
        )
    assert_refused(r, 422, "validation_error")
    assert not User.objects.filter(username="nina").exists()


def test_product_crud(api_client: Any, vendor: User, token_for: Any) -> None:
    token = token_for(vendor)
    r = api_client.call(
        "post",
        "/api/storefront/products",
        {"name": "Tea", "mrp": "100", "price": "90", "stock": 4},
        token=token,
    )
    assert r.status_code == 201, r.content
    pid = r.json()["id"]
    assert r.json()["price"] == "90.00"  # Decimal serialized as a string, never a float
    with writes_nothing():
        r = api_client.call("patch", f"/api/storefront/products/{pid}", {"price": "120"}, token=token)
    assert (r.status_code, r.json()["code"]) == (422, "price_above_mrp")
    r = api_client.call("patch", f"/api/storefront/products/{pid}", {"stock": 9}, token=token)
    assert r.json()["stock"] == 9
    r = api_client.call("post", f"/api/storefront/products/{pid}/toggle", token=token)
    assert r.json()["is_available"] is False
    r = api_client.call("get", "/api/storefront/products", token=token)
    assert [p["name"] for p in r.json()["items"]] == ["Tea"]
    with writes_nothing():
        r = api_client.call(
            "post", "/api/storefront/products", {"name": "TEA", "mrp": "1", "price": "1"}, token=token
        )
    assert (r.status_code, r.json()["code"]) == (409, "duplicate_name")
    r = api_client.call("delete", f"/api/storefront/products/{pid}", token=token)
    assert r.json() == {"outcome": "deleted"}
    assert not Product.objects.exists()


def test_vendor_endpoints_need_auth(api_client: Any) -> None:
    for method, path in [
        ("get", "/api/storefront/shop"),
        ("get", "/api/storefront/products"),
        ("get", "/api/storefront/orders"),
    ]:
        r = api_client.call(method, path)
        assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
        assert_refused(r, 401, "unauthorized")
    with writes_nothing():  # and a write without credentials
        r = api_client.call("post", "/api/storefront/products", {"name": "Tea", "mrp": "100", "price": "90"})
        assert_refused(r, 401, "unauthorized")


def test_every_vendor_endpoint_hides_other_shops_data(
    api_client: Any, vendor: User, other_vendor: User, make_product: Any, token_for: Any
) -> None:
    theirs = make_product(other_vendor)
    r = _place(api_client, "otto-tea", theirs.pk)
    order_id = Order.objects.get().pk
    token = token_for(vendor)
    calls = [
        ("get", f"/api/storefront/products/{theirs.pk}", None, "product_not_found"),
        ("patch", f"/api/storefront/products/{theirs.pk}", {"name": "Mine"}, "product_not_found"),
        ("post", f"/api/storefront/products/{theirs.pk}/toggle", None, "product_not_found"),
        ("delete", f"/api/storefront/products/{theirs.pk}", None, "product_not_found"),
        ("get", f"/api/storefront/orders/{order_id}", None, "order_not_found"),
        ("post", f"/api/storefront/orders/{order_id}/status", {"status": "cancelled"}, "order_not_found"),
        ("post", f"/api/storefront/orders/{order_id}/payment", {"payment_status": "paid"}, "order_not_found"),
    ]
    for method, path, body, code in calls:
        with writes_nothing():
            r = api_client.call(method, path, body, token=token)
        assert r.status_code == 404, (method, path, r.content)
        assert r.json()["code"] in {"product_not_found", "order_not_found"}
        assert_refused(r, 404, code)
    assert api_client.call("get", "/api/storefront/orders", token=token).json()["count"] == 0
    assert api_client.call("get", "/api/storefront/products", token=token).json()["count"] == 0
    csv = api_client.call("get", "/api/storefront/orders/export.csv", token=token)
    assert b"BZ-" not in b"".join(csv.streaming_content)
    theirs.refresh_from_db()
    order = Order.objects.get()
    assert (theirs.name, theirs.is_available, theirs.stock, order.status, order.payment_status) == (
        "Tea",
        True,
        9,
        "placed",
        "pending",
    )


def test_user_without_shop_gets_no_shop(api_client: Any, make_user: Any, token_for: Any) -> None:
    token = token_for(make_user("nobody"))
    r = api_client.call("get", "/api/storefront/products", token=token)
    assert (r.status_code, r.json()["code"]) == (404, "no_shop")
    with writes_nothing():
        r = api_client.call(
            "post", "/api/storefront/products", {"name": "Tea", "mrp": "1", "price": "1"}, token=token
        )
        assert_refused(r, 404, "no_shop")
    r = api_client.call("post", "/api/storefront/shop", {"name": "Late Shop"}, token=token)
    assert (r.status_code, r.json()["slug"]) == (201, "late-shop")


def test_public_order_idempotency_and_errors(api_client: Any, vendor: User, make_product: Any) -> None:
    tea = make_product(vendor, stock=3)
    r = _place(api_client, "vera-spices", tea.pk, 2, key="k-1")
    assert r.status_code == 201, r.content
    number = r.json()["number"]
    assert r.json()["total"] == "180.00"
    r = _place(api_client, "vera-spices", tea.pk, 2, key="k-1")
    assert (r.status_code, r.json()["number"]) == (200, number)
    with writes_nothing():
        r = _place(api_client, "vera-spices", tea.pk, 1, key="k-1")
    assert (r.status_code, r.json()["code"]) == (422, "idempotency_key_reused")
    with writes_nothing():
        r = _place(api_client, "vera-spices", tea.pk, 2, key="k-2")
    assert (r.status_code, r.json()["code"]) == (409, "out_of_stock")
    assert r.json()["details"] == {"product_id": tea.pk, "available": 1}
    with writes_nothing():
        r = api_client.call(
            "post",
            "/api/storefront/stores/vera-spices/orders",
            {"items": [{"product_id": tea.pk, "quantity": 1}], **ORDER},
        )
    assert (r.status_code, r.json()["code"]) == (422, "idempotency_key_required")
    with writes_nothing():
        r = _place(api_client, "no-such-shop", tea.pk, 1, key="k-3")
    assert (r.status_code, r.json()["code"]) == (404, "shop_not_found")
    tea.refresh_from_db()
    assert tea.stock == 1
    assert Order.objects.count() == 1
    r = api_client.call("get", f"/api/storefront/stores/vera-spices/orders/{number}")
    assert r.json()["items"][0]["quantity"] == 2


def test_order_status_api(api_client: Any, vendor: User, make_product: Any, token_for: Any) -> None:
    tea = make_product(vendor, stock=3)
    _place(api_client, "vera-spices", tea.pk, 2)
    order = Order.objects.get()
    token = token_for(vendor)
    with writes_nothing():
        r = api_client.call(
            "post", f"/api/storefront/orders/{order.pk}/status", {"status": "shipped"}, token=token
        )
    assert (r.status_code, r.json()["code"]) == (409, "illegal_transition")
    assert Order.objects.get().status == "placed"
    r = api_client.call(
        "post", f"/api/storefront/orders/{order.pk}/status", {"status": "cancelled"}, token=token
    )
    assert (r.status_code, r.json()["status"]) == (200, "cancelled")
    tea.refresh_from_db()
    assert tea.stock == 3
    r = api_client.call("get", "/api/storefront/orders?status=cancelled", token=token)
    assert r.json()["count"] == 1
    r = api_client.call("get", "/api/storefront/orders?status=weird", token=token)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_status")


def test_public_store_json_and_summary(
    api_client: Any, vendor: User, make_product: Any, token_for: Any
) -> None:
    make_product(vendor, stock=2)
    make_product(vendor, name="Hidden", is_listed=False)
    r = api_client.call("get", "/api/storefront/stores/vera-spices")
    assert [p["name"] for p in r.json()["products"]] == ["Tea"]
    r = api_client.call("get", "/api/storefront/summary", token=token_for(vendor))
    body = r.json()
    assert len(body["days"]) == 30
    assert [p["name"] for p in body["low_stock"]] == ["Tea"]
    assert Shop.objects.count() == 1
