"""The rentals JSON API: auth, public cached catalogue, desk flows, errors with codes and nothing written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from bazaar.core.testing import assert_refused
from bazaar.rentals.models import Copy, Customer, ExportJob, Payment, PricePlan, Rental, Title

pytestmark = pytest.mark.django_db


def body(r: Any) -> Any:
    return json.loads(r.content)


def desk_state() -> tuple[Any, ...]:
    """Everything a refused desk write must leave alone: customers, titles, copies, rentals, payments, plans."""
    return (
        list(Customer.objects.order_by("pk").values_list("pk", "name", "email", "status")),
        list(Title.objects.order_by("pk").values_list("pk", "title", "isbn", "kind")),
        list(Copy.objects.order_by("pk").values_list("pk", "title_id", "state")),
        list(Rental.objects.order_by("pk").values_list("pk", "copy_id", "returned_at", "renewals", "charge")),
        list(Payment.objects.order_by("pk").values_list("pk", "customer_id", "amount")),
        list(PricePlan.objects.order_by("pk").values_list("kind", "daily_rate", "minimum_charge")),
    )


@contextmanager
def writes_nothing() -> Iterator[None]:
    before = desk_state()
    yield
    assert desk_state() == before


def test_desk_endpoints_need_staff(api_client: Any, make_user: Any, token_for: Any) -> None:
    assert_refused(api_client.call("GET", "/api/rentals/customers"), 401, "unauthorized")
    with writes_nothing():
        assert_refused(api_client.call("POST", "/api/rentals/customers", {"name": "A"}), 401, "unauthorized")
    user_token = token_for(make_user("plain"))
    with writes_nothing():
        r = api_client.call("POST", "/api/rentals/customers", {"name": "A"}, token=user_token)
    assert r.status_code == 403  # a valid token without the right
    assert body(r)["code"] == "staff_required"
    assert Customer.objects.count() == 0


def test_public_title_list_and_detail_cached_and_invalidated(
    api_client: Any,
    staff_token: str,
    make_title: Any,
    make_customer: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        title = make_title(title="The Hobbit", author="Tolkien", copies=2)
    r = api_client.call("GET", "/api/rentals/titles")
    assert r.status_code == 200
    assert r["X-Cache"] == "miss"
    page = body(r)
    assert page["count"] == 1
    assert page["items"][0]["copies_available"] == 2
    assert page["limit"] == 50
    r2 = api_client.call("GET", "/api/rentals/titles")
    assert r2["X-Cache"] == "hit"
    assert r2.content == r.content
    assert api_client.call("GET", "/api/rentals/titles", HTTP_IF_NONE_MATCH=r["ETag"]).status_code == 304
    d = api_client.call("GET", f"/api/rentals/titles/{title.pk}")
    assert body(d)["copies_available"] == 2
    customer = make_customer()
    with django_capture_on_commit_callbacks(execute=True):
        rent = api_client.call(
            "POST",
            "/api/rentals/rentals",
            {"customer_id": customer.pk, "title_id": title.pk},
            token=staff_token,
        )
    assert rent.status_code == 201
    r3 = api_client.call("GET", "/api/rentals/titles")
    assert r3["X-Cache"] == "miss"
    assert body(r3)["items"][0]["copies_available"] == 1
    assert body(api_client.call("GET", f"/api/rentals/titles/{title.pk}"))["copies_available"] == 1
    assert_refused(api_client.call("GET", "/api/rentals/titles/999999"), 404, "title_not_found")
    assert body(api_client.call("GET", "/api/rentals/titles?q=hobbit"))["count"] == 1
    assert body(api_client.call("GET", "/api/rentals/titles?q=zzz"))["count"] == 0
    bad = api_client.call("GET", "/api/rentals/titles?limit=1000")
    assert bad.status_code == 422
    assert body(bad)["code"] == "invalid_limit"


def test_rent_return_flow(api_client: Any, staff_token: str, make_title: Any, make_customer: Any) -> None:
    title, customer = make_title(kind="novel", copies=1), make_customer()
    r = api_client.call(
        "POST", "/api/rentals/rentals", {"customer_id": customer.pk, "title_id": title.pk}, token=staff_token
    )
    assert r.status_code == 201
    rental = body(r)
    assert rental["customer_id"] == customer.pk
    assert rental["title_id"] == title.pk
    assert rental["copy_id"]
    assert rental["barcode"]
    assert rental["is_open"] is True
    assert rental["charge"] is None
    assert rental["terms"]["minimum_charge"] == "4.50"
    with writes_nothing():
        again = api_client.call(
            "POST",
            "/api/rentals/rentals",
            {"customer_id": customer.pk, "title_id": title.pk},
            token=staff_token,
        )
    assert again.status_code == 409
    assert body(again)["code"] == "no_copy_available"
    ret = api_client.call("POST", f"/api/rentals/rentals/{rental['id']}/return", token=staff_token)
    assert ret.status_code == 200
    closed = body(ret)
    assert closed["charge"] == "4.50"
    assert closed["breakdown"]["minimum_applied"] is True
    with writes_nothing():
        twice = api_client.call("POST", f"/api/rentals/rentals/{rental['id']}/return", token=staff_token)
    assert twice.status_code == 409
    assert body(twice)["code"] == "already_returned"
    assert body(twice)["details"]["rental_id"] == rental["id"]
    assert Rental.objects.get().charge == Decimal("4.50")


def test_return_backdating_422(
    api_client: Any, staff_token: str, make_title: Any, make_customer: Any
) -> None:
    title, customer = make_title(), make_customer()
    rental = body(
        api_client.call(
            "POST",
            "/api/rentals/rentals",
            {"customer_id": customer.pk, "title_id": title.pk},
            token=staff_token,
        )
    )
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    past = (timezone.now() - timedelta(days=1)).isoformat()
    for when, code in [(future, "return_in_future"), (past, "return_before_rent")]:
        with writes_nothing():
            r = api_client.call(
                "POST",
                f"/api/rentals/rentals/{rental['id']}/return",
                {"returned_at": when},
                token=staff_token,
            )
        assert r.status_code == 422
        assert body(r)["code"] == code
    assert Rental.objects.get().returned_at is None


def test_return_by_barcode_and_renew(
    api_client: Any, staff_token: str, make_title: Any, make_customer: Any
) -> None:
    title, customer = make_title(copies=1), make_customer()
    rental = body(
        api_client.call(
            "POST",
            "/api/rentals/rentals",
            {"customer_id": customer.pk, "title_id": title.pk},
            token=staff_token,
        )
    )
    renewed = api_client.call("POST", f"/api/rentals/rentals/{rental['id']}/renew", token=staff_token)
    assert renewed.status_code == 200
    assert body(renewed)["renewals"] == 1
    r = api_client.call("POST", "/api/rentals/returns", {"barcode": rental["barcode"]}, token=staff_token)
    assert r.status_code == 200
    assert body(r)["id"] == rental["id"]
    assert body(r)["charge"] == "2.00"


def test_input_validation(api_client: Any, staff_token: str, make_customer: Any) -> None:
    customer = make_customer()
    before = desk_state()
    r = api_client.call(
        "POST", "/api/rentals/rentals", {"customer_id": customer.pk, "bogus": 1}, token=staff_token
    )
    assert r.status_code == 422
    assert body(r)["code"] == "validation_error"
    r = api_client.call("POST", "/api/rentals/rentals", {"customer_id": customer.pk}, token=staff_token)
    assert r.status_code == 422
    assert body(r)["code"] == "title_or_copy"
    r = api_client.call("POST", "/api/rentals/rentals", "{nope", token=staff_token)
    assert_refused(r, 400, "malformed_json")
    r = api_client.call(
        "POST", "/api/rentals/titles", {"title": "T", "author": "A", "isbn": "123"}, token=staff_token
    )
    assert r.status_code == 422
    assert body(r)["code"] == "invalid_isbn"
    assert Rental.objects.count() == 0
    assert Title.objects.count() == 0
    assert desk_state() == before


def test_catalogue_admin_endpoints(api_client: Any, staff_token: str) -> None:
    r = api_client.call(
        "POST",
        "/api/rentals/titles",
        {
            "title": "Dune",
            "author": "Frank Herbert",
            "kind": "fiction",
            "isbn": "978-0441172719",
            "copies": 2,
        },
        token=staff_token,
    )
    assert r.status_code == 201
    assert body(r)["copies_available"] == 2
    assert body(r)["isbn"] == "9780441172719"
    tid = body(r)["id"]
    r = api_client.call("POST", f"/api/rentals/titles/{tid}/copies", {"barcodes": ["D-1"]}, token=staff_token)
    assert r.status_code == 201
    assert body(r)[0]["barcode"] == "D-1"
    copies = body(api_client.call("GET", f"/api/rentals/titles/{tid}/copies", token=staff_token))
    assert len(copies) == 3
    r = api_client.call(
        "PATCH", f"/api/rentals/copies/{copies[0]['id']}", {"state": "lost"}, token=staff_token
    )
    assert r.status_code == 200
    assert body(r)["state"] == "lost"
    r = api_client.call("PATCH", f"/api/rentals/titles/{tid}", {"description": "Spice."}, token=staff_token)
    assert body(r)["description"] == "Spice."
    assert body(r)["copies_total"] == 2
    assert Copy.objects.count() == 3


def test_price_plans(api_client: Any, staff_token: str) -> None:
    plans = body(api_client.call("GET", "/api/rentals/price-plans", token=staff_token))
    assert [p["kind"] for p in plans] == ["fiction", "novel", "regular"]
    r = api_client.call(
        "PATCH", "/api/rentals/price-plans/fiction", {"daily_rate": "3.25"}, token=staff_token
    )
    assert r.status_code == 200
    assert body(r)["daily_rate"] == "3.25"
    with writes_nothing():
        r = api_client.call(
            "PATCH", "/api/rentals/price-plans/fiction", {"daily_rate": "-1"}, token=staff_token
        )
    assert r.status_code == 422
    assert body(r)["code"] == "invalid_plan"
    assert PricePlan.objects.get(kind="fiction").daily_rate == Decimal("3.25")
    q = body(api_client.call("GET", "/api/rentals/price-plans/regular/quote?days=5", token=staff_token))
    assert q["total"] == "6.50"


def test_customers_payments_statement(api_client: Any, staff_token: str, make_title: Any) -> None:
    r = api_client.call(
        "POST", "/api/rentals/customers", {"name": "Amina", "email": "amina@example.com"}, token=staff_token
    )
    assert r.status_code == 201
    cid = body(r)["id"]
    with writes_nothing():
        r = api_client.call(
            "POST", "/api/rentals/customers", {"name": "B", "email": "bad"}, token=staff_token
        )
    assert r.status_code == 422
    assert body(r)["code"] == "invalid_email"
    assert body(api_client.call("GET", "/api/rentals/customers?q=amin", token=staff_token))["count"] == 1
    r = api_client.call(
        "POST", f"/api/rentals/customers/{cid}/payments", {"amount": "3.00"}, token=staff_token
    )
    assert r.status_code == 201
    assert body(r)["amount"] == "3.00"
    with writes_nothing():
        r = api_client.call(
            "POST", f"/api/rentals/customers/{cid}/payments", {"amount": "0"}, token=staff_token
        )
    assert_refused(r, 422, "invalid_amount")
    assert Payment.objects.count() == 1
    api_client.call(
        "POST", "/api/rentals/rentals", {"customer_id": cid, "title_id": make_title().pk}, token=staff_token
    )
    st = body(api_client.call("GET", f"/api/rentals/customers/{cid}/statement", token=staff_token))
    assert st["balance"] == "-3.00"
    assert len(st["open_rentals"]) == 1
    assert st["open_rentals"][0]["estimate"]["total"] == "2.00"
    r = api_client.call("PATCH", f"/api/rentals/customers/{cid}", {"status": "blocked"}, token=staff_token)
    assert body(r)["status"] == "blocked"
    lst = body(api_client.call("GET", "/api/rentals/rentals?open=true", token=staff_token))
    assert lst["count"] == 1


def test_export_flow(
    api_client: Any,
    staff_token: str,
    make_title: Any,
    make_customer: Any,
    settings: Any,
    tmp_path: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.MEDIA_ROOT = tmp_path
    title, customer = make_title(copies=2), make_customer(name="Zoë")
    api_client.call(
        "POST", "/api/rentals/rentals", {"customer_id": customer.pk, "title_id": title.pk}, token=staff_token
    )
    with django_capture_on_commit_callbacks(execute=True):
        r = api_client.call("POST", "/api/rentals/exports", token=staff_token)
    assert r.status_code == 202
    job = body(api_client.call("GET", f"/api/rentals/exports/{body(r)['id']}", token=staff_token))
    assert job["status"] == "done"
    assert job["progress"] == 1.0
    assert job["total"] == 1
    dl = api_client.call("GET", job["download_url"], token=staff_token)
    assert dl.status_code == 200
    assert dl["Content-Type"] == "text/csv"
    text = b"".join(dl.streaming_content).decode()
    assert text.splitlines()[0].startswith("rental_id,")
    assert "Zoë" in text
    assert len(text.splitlines()) == 2


def test_export_not_ready(api_client: Any, staff_token: str) -> None:
    job = ExportJob.objects.create()
    r = api_client.call("GET", f"/api/rentals/exports/{job.pk}/download", token=staff_token)
    assert r.status_code == 409
    assert body(r)["code"] == "export_not_ready"


def test_openapi_documents_rentals(api_client: Any) -> None:
    schema = body(api_client.call("GET", "/api/openapi.json"))
    assert "/api/rentals/rentals" in schema["paths"]
    assert "/api/rentals/titles" in schema["paths"]
