"""Desk services: renting, returning, renewing, limits, charges stored once, plans snapshotted, catalogue."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from bazaar.core.errors import Conflict, NotFound, ValidationFailed
from bazaar.rentals import selectors, services
from bazaar.rentals.models import Copy, CopyState, Hold, Payment, Rental, Title

pytestmark = pytest.mark.django_db


def _backdate(rental: Rental, days: float) -> Rental:
    """Move a rental's start into the past (as if rented ``days`` ago), keeping its loan period."""
    delta = timedelta(days=days)
    Rental.objects.filter(pk=rental.pk).update(
        rented_at=rental.rented_at - delta, due_at=rental.due_at - delta
    )
    rental.refresh_from_db()
    return rental


@pytest.mark.parametrize(
    ("kind", "days", "expected"),
    [
        ("regular", 1, "2.00"),
        ("regular", 3, "3.50"),
        ("regular", 5, "6.50"),
        ("novel", 1, "4.50"),
        ("novel", 3, "4.50"),
        ("novel", 4, "6.00"),
        ("fiction", 1, "3.00"),
        ("fiction", 4, "12.00"),
    ],
)
def test_return_charges_koko_table(
    make_title: Any, make_customer: Any, kind: str, days: int, expected: str
) -> None:
    title, customer = make_title(kind=kind), make_customer()
    rental = _backdate(services.rental_rent(customer_id=customer.pk, title_id=title.pk), days + 0.1)
    closed = services.rental_return(rental_id=rental.pk)
    assert closed.charge == Decimal(expected)
    assert closed.breakdown is not None
    assert closed.breakdown["days"] == days
    assert Copy.objects.get(pk=rental.copy_id).state == CopyState.AVAILABLE


def test_rent_picks_a_free_copy_and_answers_ids(make_title: Any, make_customer: Any, clerk: Any) -> None:
    title, customer = make_title(copies=2), make_customer()
    r1 = services.rental_rent(customer_id=customer.pk, title_id=title.pk, by=clerk)
    r2 = services.rental_rent(customer_id=customer.pk, title_id=title.pk)
    assert r1.copy_id != r2.copy_id
    assert r1.pk
    assert r1.title_id == title.pk
    assert r1.customer_id == customer.pk
    assert r1.due_at - r1.rented_at == timedelta(days=14)
    assert r1.terms["kind"] == "regular"
    assert r1.rented_by == clerk
    with pytest.raises(Conflict) as exc:
        services.rental_rent(customer_id=customer.pk, title_id=title.pk)
    assert exc.value.code == "no_copy_available"
    assert Rental.objects.count() == 2


def test_rent_specific_copy_and_refuse_rented_copy(make_title: Any, make_customer: Any) -> None:
    title = make_title(copies=1)
    copy = title.copies.get()
    services.rental_rent(customer_id=make_customer().pk, barcode=copy.barcode)
    with pytest.raises(Conflict) as exc:
        services.rental_rent(customer_id=make_customer().pk, copy_id=copy.pk)
    assert exc.value.code == "copy_not_available"
    assert Rental.objects.count() == 1


@pytest.mark.parametrize(
    ("kwargs", "code", "error"),
    [
        ({}, "title_or_copy", ValidationFailed),
        ({"title_id": 999999}, "title_not_found", NotFound),
        ({"copy_id": 999999}, "copy_not_found", NotFound),
    ],
)
def test_rent_bad_input_writes_nothing(
    make_customer: Any, kwargs: dict[str, Any], code: str, error: type[ValidationFailed | NotFound]
) -> None:
    with pytest.raises(error) as exc:
        services.rental_rent(customer_id=make_customer().pk, **kwargs)
    assert exc.value.code == code
    assert Rental.objects.count() == 0


def test_rent_due_date(make_title: Any, make_customer: Any) -> None:
    title, customer = make_title(copies=2), make_customer()
    with pytest.raises(ValidationFailed) as exc:
        services.rental_rent(
            customer_id=customer.pk, title_id=title.pk, due_at=timezone.now() - timedelta(hours=1)
        )
    assert exc.value.code == "invalid_due_date"
    assert Rental.objects.count() == 0
    due = timezone.now() + timedelta(days=3)
    assert services.rental_rent(customer_id=customer.pk, title_id=title.pk, due_at=due).due_at == due


def test_blocked_customer_refused(make_title: Any, make_customer: Any) -> None:
    customer = make_customer(status="blocked")
    with pytest.raises(Conflict) as exc:
        services.rental_rent(customer_id=customer.pk, title_id=make_title().pk)
    assert exc.value.code == "customer_blocked"
    assert Rental.objects.count() == 0


def test_open_rental_limit(make_title: Any, make_customer: Any, settings: Any) -> None:
    settings.RENTALS_MAX_OPEN_RENTALS = 2
    title, customer = make_title(copies=3), make_customer()
    services.rental_rent(customer_id=customer.pk, title_id=title.pk)
    services.rental_rent(customer_id=customer.pk, title_id=title.pk)
    with pytest.raises(Conflict) as exc:
        services.rental_rent(customer_id=customer.pk, title_id=title.pk)
    assert exc.value.code == "rental_limit_reached"
    assert exc.value.details == {"open_rentals": 2, "limit": 2}
    assert Rental.objects.count() == 2


def test_balance_limit_and_payment(make_title: Any, make_customer: Any, settings: Any) -> None:
    settings.RENTALS_MAX_BALANCE = "5.00"
    title, customer = make_title(kind="fiction", copies=1), make_customer()
    rental = _backdate(services.rental_rent(customer_id=customer.pk, title_id=title.pk), 2.5)
    services.rental_return(rental_id=rental.pk)  # 6.00 owed
    with pytest.raises(Conflict) as exc:
        services.rental_rent(customer_id=customer.pk, title_id=title.pk)
    assert exc.value.code == "balance_too_high"
    assert exc.value.details["balance"] == "6.00"
    assert Rental.objects.count() == 1
    services.payment_record(customer_id=customer.pk, amount="1.00")
    assert selectors.customer_standing(customer_id=customer.pk).balance == Decimal("5.00")
    services.rental_rent(customer_id=customer.pk, title_id=title.pk)  # 5.00 is not *more* than 5.00


def test_return_twice_is_conflict_and_charges_once(make_title: Any, make_customer: Any) -> None:
    rental = services.rental_rent(customer_id=make_customer().pk, title_id=make_title().pk)
    first = services.rental_return(rental_id=rental.pk)
    with pytest.raises(Conflict) as exc:
        services.rental_return(rental_id=rental.pk)
    assert exc.value.code == "already_returned"
    assert exc.value.details["rental_id"] == rental.pk
    assert exc.value.details["charge"] == "2.00"
    again = Rental.objects.get(pk=rental.pk)
    assert again.charge == first.charge
    assert again.returned_at == first.returned_at


def test_backdated_return_rules(make_title: Any, make_customer: Any) -> None:
    rental = _backdate(
        services.rental_rent(customer_id=make_customer().pk, title_id=make_title(kind="fiction").pk), 5
    )
    for at, code in [
        (timezone.now() + timedelta(minutes=5), "return_in_future"),
        (rental.rented_at - timedelta(seconds=1), "return_before_rent"),
    ]:
        with pytest.raises(ValidationFailed) as exc:
            services.rental_return(rental_id=rental.pk, returned_at=at)
        assert exc.value.code == code
        assert Rental.objects.get(pk=rental.pk).returned_at is None
        assert Copy.objects.get(pk=rental.copy_id).state == CopyState.RENTED
    closed = services.rental_return(
        rental_id=rental.pk, returned_at=rental.rented_at + timedelta(days=2, hours=3)
    )
    assert closed.charge == Decimal("6.00")


def test_overdue_fine(make_title: Any, make_customer: Any) -> None:
    rental = _backdate(
        services.rental_rent(customer_id=make_customer().pk, title_id=make_title(kind="fiction").pk), 10.1
    )
    closed = services.rental_return(rental_id=rental.pk)  # 10 days; due after 7: 3 late, 1 grace -> 2 x 0.50
    assert closed.breakdown is not None
    assert (closed.breakdown["late_days"], closed.breakdown["fine"]) == (3, "1.00")
    assert closed.charge == Decimal("31.00")


def test_plan_change_does_not_touch_open_rentals(make_title: Any, make_customer: Any) -> None:
    title, customer = make_title(kind="fiction", copies=2), make_customer()
    old = _backdate(services.rental_rent(customer_id=customer.pk, title_id=title.pk), 1.1)
    services.plan_update(kind="fiction", daily_rate="5.00")
    new = _backdate(services.rental_rent(customer_id=customer.pk, title_id=title.pk), 1.1)
    assert services.rental_return(rental_id=old.pk).charge == Decimal("3.00")
    assert services.rental_return(rental_id=new.pk).charge == Decimal("5.00")


def test_plan_update_validation(db: Any) -> None:
    for fields in ({"daily_rate": "-1"}, {"daily_rate": "1.005"}, {"loan_days": 0}, {"bogus": 1}):
        with pytest.raises(ValidationFailed) as exc:
            services.plan_update(kind="regular", **fields)
        assert exc.value.code == "invalid_plan"
    assert services.plan_terms("regular").daily_rate == Decimal("1.50")


def test_renew(make_title: Any, make_customer: Any, settings: Any) -> None:
    settings.RENTALS_MAX_RENEWALS = 1
    title = make_title(copies=1)
    rental = services.rental_rent(customer_id=make_customer().pk, title_id=title.pk)
    due = rental.due_at
    renewed = services.rental_renew(rental_id=rental.pk)
    assert renewed.due_at == due + timedelta(days=14)
    assert renewed.renewals == 1
    with pytest.raises(Conflict) as exc:
        services.rental_renew(rental_id=rental.pk)
    assert exc.value.code == "renewal_limit_reached"
    assert Rental.objects.get(pk=rental.pk).due_at == renewed.due_at


def test_renew_refused_while_another_customer_waits(make_title: Any, make_customer: Any) -> None:
    title, a, b = make_title(copies=1), make_customer(), make_customer()
    rental = services.rental_rent(customer_id=a.pk, title_id=title.pk)
    services.hold_place(customer_id=a.pk, title_id=title.pk)  # own hold does not block
    services.rental_renew(rental_id=rental.pk)
    hold = services.hold_place(customer_id=b.pk, title_id=title.pk)
    with pytest.raises(Conflict) as exc:
        services.rental_renew(rental_id=rental.pk)
    assert exc.value.code == "title_waited_for"
    with pytest.raises(Conflict) as exc:
        services.hold_place(customer_id=b.pk, title_id=title.pk)
    assert exc.value.code == "hold_exists"
    services.rental_return(rental_id=rental.pk)
    services.rental_rent(customer_id=b.pk, title_id=title.pk)
    assert Hold.objects.get(pk=hold.pk).closed_at is not None  # renting fulfils the hold


def test_renew_refused_when_overdue_or_closed(make_title: Any, make_customer: Any) -> None:
    rental = _backdate(services.rental_rent(customer_id=make_customer().pk, title_id=make_title().pk), 20)
    with pytest.raises(Conflict) as exc:
        services.rental_renew(rental_id=rental.pk)
    assert exc.value.code == "rental_overdue"
    services.rental_return(rental_id=rental.pk)
    with pytest.raises(Conflict) as exc:
        services.rental_renew(rental_id=rental.pk)
    assert exc.value.code == "rental_closed"


def test_return_by_barcode(make_title: Any, make_customer: Any) -> None:
    title = make_title(copies=1)
    copy = title.copies.get()
    with pytest.raises(Conflict) as exc:
        services.rental_return_copy(barcode=copy.barcode)
    assert exc.value.code == "copy_not_rented"
    with pytest.raises(NotFound):
        services.rental_return_copy(barcode="nope")
    rental = services.rental_rent(customer_id=make_customer().pk, title_id=title.pk)
    assert services.rental_return_copy(barcode=copy.barcode).pk == rental.pk


def test_db_refuses_two_open_rentals_of_one_copy(make_title: Any, make_customer: Any) -> None:
    rental = services.rental_rent(customer_id=make_customer().pk, title_id=make_title().pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        Rental.objects.create(
            customer=rental.customer,
            copy_id=rental.copy_id,
            title_id=rental.title_id,
            rented_at=timezone.now(),
            due_at=timezone.now() + timedelta(days=1),
            terms=rental.terms,
        )


def test_db_refuses_closed_rental_without_charge(make_title: Any, make_customer: Any) -> None:
    rental = services.rental_rent(customer_id=make_customer().pk, title_id=make_title().pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        Rental.objects.filter(pk=rental.pk).update(returned_at=timezone.now())


def test_title_create_isbn_rules(db: Any) -> None:
    t = services.title_create(
        title="Dune", author="Frank Herbert", isbn="978-0-441-17271-9", kind="fiction", copies=2
    )
    assert t.isbn == "9780441172719"
    assert t.copies.count() == 2
    assert services.title_create(title="X", author="Y", isbn="0-306-40615-2").isbn == "0306406152"
    for isbn, code in [("978-0-441-17271-8", "invalid_isbn"), ("12345", "invalid_isbn")]:
        with pytest.raises(ValidationFailed) as exc:
            services.title_create(title="Bad", author="A", isbn=isbn)
        assert exc.value.code == code
    with pytest.raises(Conflict) as exc2:
        services.title_create(title="Again", author="A", isbn="9780441172719", copies=3)
    assert exc2.value.code == "isbn_taken"
    with pytest.raises(ValidationFailed):
        services.title_create(title="K", author="A", kind="poetry")
    assert Title.objects.count() == 2
    assert Copy.objects.count() == 2


def test_copies_add_and_state(make_title: Any, make_customer: Any) -> None:
    title = make_title(copies=0)
    added = services.copies_add(title_id=title.pk, count=2, barcodes=["B-1"])
    assert len(added) == 3
    assert {c.barcode for c in added} >= {"B-1"}
    with pytest.raises(Conflict) as exc:
        services.copies_add(title_id=title.pk, barcodes=["B-2", "B-1"])
    assert exc.value.code == "barcode_taken"
    assert Copy.objects.count() == 3
    with pytest.raises(ValidationFailed):
        services.copies_add(title_id=title.pk, count=0)
    services.copy_set_state(copy_id=added[0].pk, state="withdrawn")
    rental = services.rental_rent(customer_id=make_customer().pk, title_id=title.pk)
    with pytest.raises(Conflict) as exc:
        services.copy_set_state(copy_id=rental.copy_id, state="lost")
    assert exc.value.code == "copy_rented"
    t = selectors.title_get(title_id=title.pk)
    assert (t.copies_total, t.copies_available) == (2, 1)  # type: ignore[attr-defined]


def test_customer_validation_and_block(make_customer: Any) -> None:
    from bazaar.rentals.models import Customer

    for fields, code in [
        ({"name": ""}, "invalid_name"),
        ({"name": "A", "email": "no"}, "invalid_email"),
        ({"name": "A", "phone": "abc"}, "invalid_phone"),
        ({"name": "A", "status": "x"}, "invalid_status"),
    ]:
        with pytest.raises(ValidationFailed) as exc:
            services.customer_create(**fields)
        assert exc.value.code == code
    assert Customer.objects.count() == 0
    c = make_customer()
    assert services.customer_update(customer_id=c.pk, status="blocked").status == "blocked"


def test_payment_validation(make_customer: Any) -> None:
    c = make_customer()
    for amount in ("0", "-1", "1.001", "abc"):
        with pytest.raises(ValidationFailed) as exc:
            services.payment_record(customer_id=c.pk, amount=amount)
        assert exc.value.code == "invalid_amount"
    with pytest.raises(NotFound):
        services.payment_record(customer_id=999999, amount="1.00")
    assert Payment.objects.count() == 0


def test_statement(make_title: Any, make_customer: Any) -> None:
    c = make_customer()
    t = make_title(kind="regular", copies=2)
    closed = _backdate(services.rental_rent(customer_id=c.pk, title_id=t.pk), 3.2)
    services.rental_return(rental_id=closed.pk)  # 3.50
    _backdate(services.rental_rent(customer_id=c.pk, title_id=t.pk), 1.5)  # open, 2.00 so far
    services.payment_record(customer_id=c.pk, amount="1.25")
    st = selectors.customer_statement(customer_id=c.pk)
    assert st["total_charged"] == Decimal("3.50")
    assert st["total_paid"] == Decimal("1.25")
    assert st["balance"] == Decimal("2.25")
    assert st["accruing"] == Decimal("2.00")
    assert len(st["open_rentals"]) == 1
    assert len(st["past_rentals"]) == 1
    assert st["past_rentals"][0].breakdown["lines"][1]["amount"] == "1.50"


def test_search_fallback(make_title: Any) -> None:
    make_title(title="The Hobbit", author="J. R. R. Tolkien", copies=1)
    make_title(title="Dune", author="Frank Herbert", isbn="9780441172719")
    assert [t.title for t in selectors.title_search("tolkien")] == ["The Hobbit"]
    assert [t.title for t in selectors.title_search("978-0441172719")] == ["Dune"]
    assert [t.title for t in selectors.title_search("")] == ["Dune", "The Hobbit"]
    assert list(selectors.title_search("nothing-like-this")) == []


@pytest.mark.postgres
def test_search_full_text_on_postgres(make_title: Any) -> None:
    make_title(title="The Lord of the Rings", author="J. R. R. Tolkien")
    make_title(title="Ring theory", author="Someone Else")
    make_title(title="Dune", author="Frank Herbert")
    found = [t.title for t in selectors.title_search("rings tolkien")]
    assert found[0] == "The Lord of the Rings"
    assert "Dune" not in found
