"""The HTML forms refuse what the API refuses (core.forms / core.schemas): a NUL or another control character in
any text is a form error (the store's order form: 422 ``invalid_text``) and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from bazaar.storefront.models import Order, Product

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("customer_name", "A\x00"),
        ("phone", "+91\x1b[31m"),
        ("address", "1 MG Road\x00"),
        ("idempotency_key", "k\x00"),
    ],
)
def test_the_order_form_refuses_control_characters(
    client: Client, vendor: Any, make_product: Any, field: str, value: str
) -> None:
    tea = make_product(vendor, stock=5)
    form = {
        "idempotency_key": "3f1c2c1e-bbbb",
        f"qty_{tea.pk}": "1",
        "customer_name": "Asha",
        "phone": "+91 98765 43210",
        "address": "1 MG Road\r\nBengaluru",  # line breaks are fine in an address
        field: value,
    }
    r = client.post("/s/vera-spices/order/", form)
    assert r.status_code == 422
    assert b"must not contain a control character" in r.content
    assert Order.objects.count() == 0
    tea.refresh_from_db()
    assert tea.stock == 5


def test_a_multi_line_address_is_accepted(client: Client, vendor: Any, make_product: Any) -> None:
    tea = make_product(vendor, stock=5)
    form = {
        "idempotency_key": "3f1c2c1e-cccc",
        f"qty_{tea.pk}": "1",
        "customer_name": "Asha",
        "phone": "+91 98765 43210",
        "address": "1 MG Road\r\nBengaluru\t560001",
    }
    assert client.post("/s/vera-spices/order/", form).status_code == 303
    assert Order.objects.get().address == "1 MG Road\r\nBengaluru\t560001"


def test_vendor_forms_refuse_control_characters(client: Client, vendor: Any) -> None:
    client.force_login(vendor)
    r = client.post("/storefront/products/new/", {"name": "Tea\x00", "mrp": "1", "price": "1", "stock": "1"})
    assert r.status_code == 400  # the form again, with the error
    assert b"must not contain a control character" in r.content
    r = client.post(
        "/storefront/products/new/", {"name": "Tea\nTime", "mrp": "1", "price": "1", "stock": "1"}
    )  # a name is one line
    assert b"must not contain a control character" in r.content
    assert Product.objects.count() == 0


def test_the_login_form_refuses_control_characters(client: Client, make_user: Any) -> None:
    make_user("alice")
    r = client.post("/accounts/login/", {"username": "alice\x00", "password": "correct-horse-battery"})
    assert r.status_code == 200
    assert b"must not contain a control character" in r.content
    assert "_auth_user_id" not in client.session


def test_search_terms_drop_control_characters(client: Client) -> None:
    from bazaar.rentals.services import title_create

    title_create(title="Dune", author="Frank Herbert", copies=0)
    title_create(title="Emma", author="Jane Austen", copies=0)
    r = client.get("/rentals/", {"q": "Du\x00ne\x07"})
    assert r.status_code == 200
    assert b"Dune" in r.content
    assert b"Emma" not in r.content
