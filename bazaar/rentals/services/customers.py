"""Customer writes: customers, payments and holds (waiting for a title)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from bazaar.accounts.models import User
from bazaar.core.errors import Conflict, NotFound, ValidationFailed
from bazaar.rentals.models import Customer, CustomerStatus, Hold, Payment, Title


def _clean_customer(fields: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "name" in fields or not partial:
        name = (fields.get("name") or "").strip()
        if not name or len(name) > 200:
            raise ValidationFailed("A name (1..200 characters) is required.", code="invalid_name")
        clean["name"] = name
    if "email" in fields:
        email = (fields.get("email") or "").strip()
        if email:
            try:
                validate_email(email)
            except DjangoValidationError:
                raise ValidationFailed("The e-mail address is not valid.", code="invalid_email")
        clean["email"] = email
    if "phone" in fields:
        phone = (fields.get("phone") or "").strip()
        if len(phone) > 40 or any(c not in "0123456789+-() ." for c in phone):
            raise ValidationFailed("The phone number is not valid.", code="invalid_phone")
        clean["phone"] = phone
    if "status" in fields:
        if fields["status"] not in CustomerStatus.values:
            raise ValidationFailed("status must be active or blocked.", code="invalid_status")
        clean["status"] = fields["status"]
    return clean


def customer_create(*, name: str, email: str = "", phone: str = "", status: str = "active") -> Customer:
    """Register a customer. ValidationFailed ``invalid_name`` / ``invalid_email`` / ``invalid_phone`` /
    ``invalid_status``; nothing written then."""
    clean = _clean_customer({"name": name, "email": email, "phone": phone, "status": status}, partial=False)
    return Customer.objects.create(**clean)


def customer_update(*, customer_id: int, **fields: Any) -> Customer:
    """Change a customer (name, email, phone, status: blocking stops new rentals, not returns).

    Errors as ``customer_create`` plus NotFound ``customer_not_found``. Locks the customer row, like renting,
    so a block and a rent for the same customer are ordered.
    """
    clean = _clean_customer(fields, partial=True)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
        if customer is None:
            raise NotFound("No such customer.", code="customer_not_found")
        for k, v in clean.items():
            setattr(customer, k, v)
        customer.save()
    return customer


def _amount(value: Any) -> Decimal:
    try:
        dec = Decimal(str(value))
    except InvalidOperation:
        raise ValidationFailed("amount is not a number.", code="invalid_amount")
    # The range check comes before quantize(): quantizing a huge number raises InvalidOperation.
    if not dec.is_finite() or dec <= 0 or dec >= Decimal("1000000") or dec != dec.quantize(Decimal("0.01")):
        raise ValidationFailed(
            "amount must be positive with at most 2 decimals.",
            code="invalid_amount",
            details={"amount": str(value)},
        )
    return dec.quantize(Decimal("0.01"))


def payment_record(
    *,
    customer_id: int,
    amount: Any,
    note: str = "",
    received_at: datetime | None = None,
    by: User | None = None,
) -> Payment:
    """Record money received from a customer; it lowers the balance (a credit is allowed).

    ValidationFailed ``invalid_amount`` (not positive, more than 2 decimals) or ``invalid_time`` (in the
    future); NotFound ``customer_not_found``. Nothing written on error.
    """
    dec = _amount(amount)
    now = timezone.now()
    if received_at is not None and received_at > now:
        raise ValidationFailed("A payment cannot be received in the future.", code="invalid_time")
    with transaction.atomic():
        if not Customer.objects.filter(pk=customer_id).exists():
            raise NotFound("No such customer.", code="customer_not_found")
        return Payment.objects.create(
            customer_id=customer_id,
            amount=dec,
            note=(note or "")[:200],
            received_at=received_at or now,
            received_by=by,
        )


def hold_place(*, customer_id: int, title_id: int) -> Hold:
    """Put a customer on the waiting list of a title. While the hold is active, other customers' rentals of
    that title cannot be renewed (unless a copy is free). Renting the title closes the customer's hold.

    Conflict ``hold_exists`` (one active hold per customer and title, a DB constraint); NotFound
    ``customer_not_found`` / ``title_not_found``.
    """
    try:
        with transaction.atomic():
            if not Customer.objects.filter(pk=customer_id).exists():
                raise NotFound("No such customer.", code="customer_not_found")
            if not Title.objects.filter(pk=title_id).exists():
                raise NotFound("No such title.", code="title_not_found")
            return Hold.objects.create(customer_id=customer_id, title_id=title_id)
    except IntegrityError:
        raise Conflict("The customer already waits for this title.", code="hold_exists")


def hold_cancel(*, hold_id: int) -> Hold:
    """Close an active hold (cancelling twice is harmless). NotFound ``hold_not_found``. Locks the hold."""
    with transaction.atomic():
        hold = Hold.objects.select_for_update().filter(pk=hold_id).first()
        if hold is None:
            raise NotFound("No such hold.", code="hold_not_found")
        if hold.closed_at is None:
            hold.closed_at = timezone.now()
            hold.save(update_fields=["closed_at"])
    return hold
