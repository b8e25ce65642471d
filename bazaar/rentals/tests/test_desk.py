"""The staff desk pages: rent and return by barcode through the same services as the API; staff only; every
refusal shown on the page with nothing written."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from bazaar.rentals import services
from bazaar.rentals.models import Copy, CopyState, CustomerStatus, Rental

pytestmark = pytest.mark.django_db

DESK, RENT, RETURN = "/rentals/desk/", "/rentals/desk/rent/", "/rentals/desk/return/"


@pytest.fixture
def desk(client: Client, clerk: Any) -> Client:
    client.force_login(clerk)
    return client


def _state() -> tuple[list[Any], list[Any]]:
    return (
        list(Rental.objects.order_by("pk").values_list("pk", "returned_at", "charge")),
        list(Copy.objects.order_by("pk").values_list("pk", "state")),
    )


def _copy(title: Any) -> Copy:
    return Copy.objects.filter(title=title).order_by("pk").first()  # type: ignore[return-value]


def test_anonymous_goes_to_login_and_non_staff_is_refused(
    client: Client, make_user: Any, make_title: Any, make_customer: Any
) -> None:
    r = client.get(DESK)
    assert (r.status_code, r["Location"]) == (302, "/accounts/login/?next=/rentals/desk/")
    title, customer = make_title(copies=1), make_customer()
    before = _state()
    assert client.post(RENT, {"customer": customer.pk, "barcode": _copy(title).barcode}).status_code == 302
    client.force_login(make_user("walk-in"))
    for r in (
        client.get(DESK),
        client.post(RENT, {"customer": customer.pk, "barcode": _copy(title).barcode}),
        client.post(RETURN, {"barcode": _copy(title).barcode}),
    ):
        assert r.status_code == 403
        assert "You are not allowed to open this page" in r.content.decode()
    assert _state() == before


def test_rent_by_customer_number_or_email_then_return_with_the_charge(
    desk: Client, clerk: Any, make_title: Any, make_customer: Any
) -> None:
    title = make_title(copies=2, title="Earthsea")
    customer = make_customer(name="Ged", email="ged@roke.example")
    first, second = Copy.objects.filter(title=title).order_by("pk")
    r = desk.post(RENT, {"customer": str(customer.pk), "barcode": first.barcode}, follow=True)
    assert r.redirect_chain == [(DESK, 302)]
    rental = Rental.objects.get(copy=first)
    assert (rental.customer_id, rental.rented_by_id, rental.returned_at) == (customer.pk, clerk.pk, None)
    assert f"Rented “Earthsea” (copy {first.barcode}) to Ged (no. {customer.pk}), due" in r.content.decode()
    desk.post(RENT, {"customer": " GED@roke.example ", "barcode": second.barcode})
    assert Rental.objects.get(copy=second).customer_id == customer.pk
    page = desk.get(DESK).content.decode()
    assert first.barcode in page
    assert second.barcode in page

    r = desk.post(RETURN, {"barcode": first.barcode}, follow=True)
    rental.refresh_from_db()
    assert rental.charge == Decimal("2.00")
    assert rental.returned_by_id == clerk.pk
    assert Copy.objects.get(pk=first.pk).state == CopyState.AVAILABLE
    assert (
        f"Returned “Earthsea” (copy {first.barcode}) from Ged: charge 2.00 for 1 day." in r.content.decode()
    )
    assert r.redirect_chain == [(f"/rentals/desk/returns/{rental.pk}/", 302)]
    assert "Return receipt" in r.content.decode()
    assert first.barcode not in desk.get(DESK).content.decode().split("Out now")[1]


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("empty", 422, "This field is required."),
        ("no_customer", 404, "No customer with that number or e-mail."),
        ("no_copy", 404, "No such copy."),
        ("rented", 409, "The copy is rented to #"),
        ("blocked", 409, "The customer is blocked."),
        ("ambiguous", 422, "Several customers have that e-mail; use the customer number."),
    ],
)
def test_refused_rents_show_why_and_write_nothing(
    desk: Client, make_title: Any, make_customer: Any, case: str, status: int, message: str
) -> None:
    title = make_title(copies=1)
    customer = make_customer(email="twin@example.com")
    barcode = _copy(title).barcode
    data = {"customer": str(customer.pk), "barcode": barcode}
    if case == "empty":
        data = {"customer": "", "barcode": ""}
    elif case == "no_customer":
        data["customer"] = "nobody@example.com"
    elif case == "no_copy":
        data["barcode"] = "NO-SUCH-COPY"
    elif case == "rented":
        services.rental_rent(customer_id=make_customer().pk, title_id=title.pk)
    elif case == "blocked":
        services.customer_update(customer_id=customer.pk, status=CustomerStatus.BLOCKED)
    elif case == "ambiguous":
        make_customer(email="TWIN@example.com")
        data["customer"] = "twin@example.com"
    before = _state()
    r = desk.post(RENT, data)
    assert r.status_code == status
    assert message in r.content.decode()
    assert _state() == before
    assert r["Cache-Control"] == "private, no-store"


def test_returning_what_is_not_out_is_refused(desk: Client, make_title: Any, make_customer: Any) -> None:
    title = make_title(copies=1)
    barcode = _copy(title).barcode
    before = _state()
    r = desk.post(RETURN, {"barcode": barcode})
    assert (r.status_code, "The copy is not rented." in r.content.decode()) == (409, True)
    r = desk.post(RETURN, {"barcode": "NO-SUCH-COPY"})
    assert (r.status_code, "No such copy." in r.content.decode()) == (404, True)
    assert _state() == before


def test_overdue_rentals_come_first_and_are_marked(desk: Client, make_title: Any, make_customer: Any) -> None:
    fresh = services.rental_rent(customer_id=make_customer().pk, title_id=make_title(title="Fresh").pk)
    late = services.rental_rent(customer_id=make_customer().pk, title_id=make_title(title="Late").pk)
    Rental.objects.filter(pk=late.pk).update(
        rented_at=timezone.now() - timedelta(days=30), due_at=timezone.now() - timedelta(days=16)
    )
    page = desk.get(DESK).content.decode()
    table = page.split('id="open-rentals"')[1]
    assert table.index("Late") < table.index("Fresh")
    assert table.count("overdue") == 1
    assert fresh.copy.barcode in table
