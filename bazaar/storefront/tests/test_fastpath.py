"""The WSGI fast path for POST /api/storefront/stores/<slug>/orders: the same service call and the same answer
as the Ninja view; anything it does not handle goes to Django with its body intact."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.wsgi import get_wsgi_application
from django.test import Client

from bazaar.core.fastpath import FastPath
from bazaar.core.testing import fast_path_only, wsgi_call
from bazaar.storefront.models import Order, Product

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/api/storefront/stores/vera-spices/orders"
CUSTOMER = {"customer_name": "Asha", "phone": "+91 98765 43210", "address": "1 Loopback Road"}


def _body(product_id: int, quantity: int = 1, **extra: Any) -> str:
    return json.dumps({"items": [{"product_id": product_id, "quantity": quantity}], **CUSTOMER, **extra})


def _fast(body: str, key: str = "k-1", path: str = PATH) -> tuple[str, dict[str, str], bytes] | None:
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return fast_path_only(path, method="POST", body=body, **extra)


def _django(client: Client, body: str, key: str = "k-1", path: str = PATH) -> Any:
    extra: dict[str, Any] = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(path, body, content_type="application/json", **extra)


def test_plain_order_is_answered_before_django_like_django(vendor: Any, make_product: Any) -> None:
    tea = make_product(vendor, stock=10)
    fast = _fast(_body(tea.pk, 2), key="first")
    assert fast is not None, "a plain order must not reach Django"
    status, _headers, body = fast
    assert status == "201 Created"
    placed = json.loads(body)
    assert placed["status"] == "placed"
    assert placed["items"][0]["quantity"] == 2
    tea.refresh_from_db()
    assert tea.stock == 8
    # A retry with the same key: Django and the fast path both answer the first order, byte for byte.
    client = Client()
    again = _django(client, _body(tea.pk, 2), key="first")
    assert again.status_code == 200
    replay = _fast(_body(tea.pk, 2), key="first")
    assert replay is not None
    assert replay[0] == "200 OK"
    assert replay[2] == again.content
    assert replay[1]["Content-Type"] == again["Content-Type"]
    assert json.loads(replay[2])["number"] == placed["number"]
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("out_of_stock", 409, "out_of_stock"),
        ("unknown", 422, "unknown_product"),
        ("no_shop", 404, "shop_not_found"),
    ],
)
def test_order_errors_match_djangos_and_write_nothing(
    vendor: Any, make_product: Any, case: str, status: int, code: str
) -> None:
    tea = make_product(vendor, stock=1)
    path = "/api/storefront/stores/nobody-here/orders" if case == "no_shop" else PATH
    body = (
        _body(tea.pk, 5) if case == "out_of_stock" else _body(tea.pk + 1000 if case == "unknown" else tea.pk)
    )
    fast = _fast(body, key="e-1", path=path)
    assert fast is not None
    slow = _django(Client(), body, key="e-2", path=path)
    assert int(fast[0][:3]) == slow.status_code == status
    assert json.loads(fast[2]) == slow.json()
    assert slow.json()["code"] == code
    assert Order.objects.count() == 0
    assert Product.objects.get(pk=tea.pk).stock == 1


@pytest.mark.parametrize(
    "variant",
    ["unit_price", "string_quantity", "extra_field", "no_key", "not_json", "zero_quantity", "long_name"],
)
def test_anything_unusual_goes_to_django_with_its_body(vendor: Any, make_product: Any, variant: str) -> None:
    tea = make_product(vendor, stock=10)
    key = "" if variant == "no_key" else f"u-{variant}"
    body = {
        "unit_price": json.dumps(
            {"items": [{"product_id": tea.pk, "quantity": 1, "unit_price": "9.00"}], **CUSTOMER}
        ),
        "string_quantity": json.dumps({"items": [{"product_id": tea.pk, "quantity": "1"}], **CUSTOMER}),
        "extra_field": _body(tea.pk, note="hi"),
        "no_key": _body(tea.pk),
        "not_json": "{items",
        "zero_quantity": _body(tea.pk, 0),
        "long_name": _body(tea.pk, customer_name="x" * 121),
    }[variant]
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    assert fast_path_only(PATH, method="POST", body=body, **extra) is None
    status, _headers, out = wsgi_call(
        FastPath(get_wsgi_application()), PATH, method="POST", body=body, **extra
    )
    slow = _django(Client(), body, key=f"{key}-django" if key else "", path=PATH)
    assert int(status[:3]) == slow.status_code, out  # Django saw the same body as the test client sent
    if slow.status_code >= 400:
        assert json.loads(out)["code"] == slow.json()["code"]
