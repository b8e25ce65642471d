"""Customer writes: customers, payments and holds (waiting for a title)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from bazaar.accounts.models import User
from bazaar.core.errors import Conflict, NotFound, ValidationFailed
from bazaar.rentals import cache, conf
from bazaar.rentals.models import (
    Copy,
    CopyState,
    Customer,
    CustomerStatus,
    Hold,
    Payment,
    PaymentMethod,
    Title,
)


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


def _locked_customer(customer_id: int) -> Customer:
    """The customer row, locked (inside the caller's transaction). NotFound ``customer_not_found``."""
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        raise NotFound("No such customer.", code="customer_not_found")
    return customer


def customer_update(*, customer_id: int, **fields: Any) -> Customer:
    """Change a customer (name, email, phone, status: blocking stops new rentals, not returns).

    Errors as ``customer_create`` plus NotFound ``customer_not_found``. Locks the customer row, like renting,
    so a block and a rent for the same customer are ordered.
    """
    clean = _clean_customer(fields, partial=True)
    with transaction.atomic():
        customer = _locked_customer(customer_id)
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
    method: str = PaymentMethod.CASH,
    note: str = "",
    received_at: datetime | None = None,
    by: User | None = None,
) -> Payment:
    """Record money received from a customer; it lowers the balance (a credit is allowed).

    ValidationFailed ``invalid_amount`` (not positive, more than 2 decimals), ``invalid_method`` (not one of
    PaymentMethod) or ``invalid_time`` (in the future); NotFound ``customer_not_found``. Nothing written on error.
    """
    dec = _amount(amount)
    if method not in PaymentMethod.values:
        raise ValidationFailed(
            "The payment method must be cash, card, mobile or other.", code="invalid_method"
        )
    now = timezone.now()
    if received_at is not None and received_at > now:
        raise ValidationFailed("A payment cannot be received in the future.", code="invalid_time")
    with transaction.atomic():
        if not Customer.objects.filter(pk=customer_id).exists():
            raise NotFound("No such customer.", code="customer_not_found")
        return Payment.objects.create(
            customer_id=customer_id,
            amount=dec,
            method=method,
            note=(note or "")[:200],
            received_at=received_at or now,
            received_by=by,
        )


def hold_place(*, customer_id: int, title_id: int) -> Hold:
    """Put a customer on the waiting list of a title. While the hold is active, other customers' rentals of
    that title cannot be renewed (unless a copy is free). Renting the title closes the customer's hold.

    Conflict ``hold_exists`` (one active hold per customer and title, a DB constraint); NotFound
    ``customer_not_found`` / ``title_not_found``. The title page shows the queue's length: its scope is
    invalidated after commit.
    """
    try:
        with transaction.atomic():
            if not Customer.objects.filter(pk=customer_id).exists():
                raise NotFound("No such customer.", code="customer_not_found")
            if not Title.objects.filter(pk=title_id).exists():
                raise NotFound("No such title.", code="title_not_found")
            hold = Hold.objects.create(customer_id=customer_id, title_id=title_id)
            cache.invalidate_title(title_id)
            return hold
    except IntegrityError:
        raise Conflict("The customer already waits for this title.", code="hold_exists")


def hold_cancel(*, hold_id: int, customer_id: int | None = None) -> Hold:
    """Close an active hold (cancelling twice is harmless). With ``customer_id`` (a patron cancelling their own),
    another customer's hold is NotFound too, so a patron cannot tell it exists. NotFound ``hold_not_found``.
    A copy put aside for the hold goes to the next patron in the queue, or back on the shelf (``copy_pass_on``).
    Locks the hold, then the copy; invalidates the title's page (queue length) after commit."""
    with transaction.atomic():
        hold = Hold.objects.select_for_update().filter(pk=hold_id).first()
        if hold is None or (customer_id is not None and hold.customer_id != customer_id):
            raise NotFound("No such hold.", code="hold_not_found")
        if hold.closed_at is None:
            hold.closed_at = timezone.now()
            hold.save(update_fields=["closed_at"])
            cache.invalidate_title(hold.title_id)
            if hold.copy_id is not None:
                copy_pass_on(copy_id=hold.copy_id, now=hold.closed_at)
    return hold


def hold_put_aside(*, copy_id: int, now: datetime | None = None) -> Hold | None:
    """A copy came back (it is on the shelf): put it aside for the first hold on its title that has no copy yet.
    The copy goes to the hold shelf (state ``on_hold``: only that patron can borrow it), the hold lapses after
    ``hold_pickup_days`` (``expires_at``) and the patron is e-mailed a pickup notice by the worker after commit.
    Returns that hold, or None when nobody waits (or the copy is not on the shelf). Locks the hold, then the copy.
    """
    now = now or timezone.now()
    with transaction.atomic():
        title_id = Copy.objects.filter(pk=copy_id).values_list("title_id", flat=True).first()
        if title_id is None:
            return None
        hold = (
            Hold.objects.select_for_update()
            .filter(title_id=title_id, closed_at__isnull=True, ready_at__isnull=True)
            .order_by("created_at", "id")
            .first()
        )
        if hold is None:
            return None
        if not Copy.objects.filter(pk=copy_id, state=CopyState.AVAILABLE).update(state=CopyState.ON_HOLD):
            return None
        hold.copy_id = copy_id
        hold.ready_at = now
        hold.expires_at = now + timedelta(days=conf.hold_pickup_days())
        hold.save(update_fields=["copy", "ready_at", "expires_at"])
        cache.invalidate_title(hold.title_id)
        hold_id = hold.pk
        transaction.on_commit(lambda: _send_pickup_notice(hold_id))
    return hold


def copy_pass_on(*, copy_id: int, now: datetime | None = None) -> Hold | None:
    """A copy on the hold shelf is no longer wanted by its hold (cancelled, lapsed, or the patron took another
    copy): back on the shelf, then put aside for the next patron in the queue if any (``hold_put_aside``).
    Returns the next hold or None. Locks the copy (and the next hold)."""
    with transaction.atomic():
        moved = Copy.objects.filter(pk=copy_id, state=CopyState.ON_HOLD).update(state=CopyState.AVAILABLE)
        if not moved:
            return None
        return hold_put_aside(copy_id=copy_id, now=now)


def holds_expire(*, now: datetime | None = None) -> int:
    """Lapse the holds whose put-aside copy was not collected by ``expires_at``: close each and pass the copy on to
    the next patron in the queue (``copy_pass_on``, with its pickup notice). Run by the periodic reminder task.
    Returns how many lapsed. Locks each hold; one transaction per hold."""
    now = now or timezone.now()
    lapsed = 0
    due = Hold.objects.filter(closed_at__isnull=True, expires_at__lt=now).values_list("pk", flat=True)
    for hold_id in due:
        with transaction.atomic():
            hold = Hold.objects.select_for_update().filter(pk=hold_id).first()
            if (
                hold is None
                or hold.closed_at is not None
                or hold.expires_at is None
                or hold.expires_at >= now
            ):
                continue  # collected, cancelled or changed meanwhile
            hold.closed_at = now
            hold.save(update_fields=["closed_at"])
            cache.invalidate_title(hold.title_id)
            if hold.copy_id is not None:
                copy_pass_on(copy_id=hold.copy_id, now=now)
            lapsed += 1
    return lapsed


def _send_pickup_notice(hold_id: int) -> None:
    from bazaar.rentals.tasks import hold_pickup_notice

    hold_pickup_notice.delay(hold_id)


def hold_notice_send(*, hold_id: int) -> bool:
    """E-mail the patron that the title they held is waiting for them (and until when). False when the hold is
    gone, closed, not put aside, or the patron has no e-mail address. No locks (sending twice is harmless)."""
    hold = Hold.objects.select_related("customer", "title").filter(pk=hold_id).first()
    if hold is None or hold.closed_at is not None or hold.ready_at is None or not hold.customer.email:
        return False
    until = timezone.localtime(hold.expires_at) if hold.expires_at else None
    body = (
        f"Dear {hold.customer.name},\n\n'{hold.title.title}' is waiting for you at the desk"
        + (f" until {until:%Y-%m-%d}" if until else "")
        + f".\n\nHold #{hold.pk}\n"
    )
    send_mail(
        f"Your hold is ready: '{hold.title.title}'", body, settings.DEFAULT_FROM_EMAIL, [hold.customer.email]
    )
    return True


def customer_link_user(*, customer_id: int, user: User | None) -> Customer:
    """Link a library card to a user account (the patron then signs in to their own account), or unlink it
    (``user=None``). Conflict ``user_has_card`` when the user is linked to another card already; NotFound
    ``customer_not_found``. Locks the customer row."""
    try:
        with transaction.atomic():
            customer = _locked_customer(customer_id)
            customer.user = user
            customer.save(update_fields=["user"])
    except IntegrityError:
        raise Conflict("That user account has another library card.", code="user_has_card")
    return customer


def customer_set_history(*, customer_id: int, keep: bool) -> Customer:
    """The patron's choice to see their past loans (on) or not (off). The loans stay on record: their charges
    make up the balance. NotFound ``customer_not_found``. Locks the customer row."""
    with transaction.atomic():
        customer = _locked_customer(customer_id)
        customer.keep_history = keep
        customer.save(update_fields=["keep_history"])
    return customer
