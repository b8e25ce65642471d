"""Reads for the circulation desk and the patron's own account: lookups, the patron panel, copy whereabouts,
hold queues, receipts. No locks anywhere (the services lock what they change)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Replace
from django.utils import timezone

from bazaar.core.errors import NotFound
from bazaar.rentals.models import Copy, CopyState, Customer, Hold, Payment, Rental, Title
from bazaar.rentals.selectors import IN_STOCK, Standing, customer_get, customer_standing, estimate

#: How many suggestions the patron lookup answers.
SUGGESTIONS = 10


def patron_label(customer: Customer) -> str:
    """How the desk names a patron without spelling out their whole name: "#1042 Asha K."."""
    parts = customer.name.split()
    short = parts[0] if len(parts) < 2 else f"{' '.join(parts[:-1])} {parts[-1][0]}."
    return f"#{customer.pk} {short}"


def patron_search(*, q: str, limit: int = SUGGESTIONS) -> list[Customer]:
    """Patrons whose card number is ``q`` (exact, first), or whose name, e-mail or phone contains it
    (case-insensitive; a phone matches on its digits, so "0700 000" finds "+254 700 000 001"). Name order."""
    q = " ".join((q or "").split())
    if not q:
        return []
    found: list[Customer] = []
    if q.lstrip("#").isdigit() and len(q) <= 18:  # a card number (a longer one fits no id)
        found = list(Customer.objects.filter(pk=int(q.lstrip("#"))))
    match = Q(name__icontains=q) | Q(email__icontains=q) | Q(phone__icontains=q)
    # A phone number matches on its digits, a leading 0 (national trunk prefix) dropped: "0700 000 042" finds
    # "+254 700 000 042".
    digits = "".join(c for c in q if c.isdigit()).lstrip("0")
    qs = Customer.objects.all()
    if len(digits) >= 4:
        bare: Any = F("phone")
        for sep in " -+().":
            bare = Replace(bare, Value(sep), Value(""))
        qs = qs.annotate(phone_digits=bare)
        match |= Q(phone_digits__contains=digits)
    rest = qs.filter(match).exclude(pk__in=[c.pk for c in found]).order_by("name", "id")
    return found + list(rest[: max(limit - len(found), 0)])


def customer_for_user(*, user: Any) -> Customer | None:
    """The library card linked to a signed-in user, or None (staff and shop users usually have none)."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Customer.objects.filter(user_id=user.pk).first()


def copy_whereabouts(*, barcode: str) -> str | None:
    """Where a copy that cannot be lent is, in words: "rented to #1042 Asha K., due 12 Dec", "put aside for #2231
    Ged S.", "lost", "withdrawn". None when the barcode is unknown or the copy is on the shelf."""
    copy = Copy.objects.filter(barcode=(barcode or "").strip()).first()
    if copy is None or copy.state == CopyState.AVAILABLE:
        return None
    if copy.state == CopyState.ON_HOLD:
        hold = Hold.objects.select_related("customer").filter(copy_id=copy.pk, closed_at__isnull=True).first()
        return f"put aside for {patron_label(hold.customer)}" if hold else "on the hold shelf"
    if copy.state != CopyState.RENTED:
        return copy.get_state_display().lower()
    rental = (
        Rental.objects.select_related("customer").filter(copy_id=copy.pk, returned_at__isnull=True).first()
    )
    if rental is None:
        return "rented"
    due = timezone.localtime(rental.due_at)
    return f"rented to {patron_label(rental.customer)}, due {due.day} {due:%b}"


def hold_queue(*, title_id: int) -> list[Hold]:
    """A title's active holds in queue order (oldest first), with their customers."""
    return list(
        Hold.objects.select_related("customer")
        .filter(title_id=title_id, closed_at__isnull=True)
        .order_by("created_at", "id")
    )


def holds_with_positions(holds: QuerySet[Hold]) -> list[Hold]:
    """Active holds annotated with ``position`` (1 = next in the title's queue) and ``queue`` (its length)."""
    out = list(
        holds.select_related("title", "copy").filter(closed_at__isnull=True).order_by("created_at", "id")
    )
    for hold in out:
        ahead = Hold.objects.filter(title_id=hold.title_id, closed_at__isnull=True).filter(
            Q(created_at__lt=hold.created_at) | Q(created_at=hold.created_at, id__lt=hold.pk)
        )
        hold.position = ahead.count() + 1  # type: ignore[attr-defined]
    return out


@dataclass
class Panel:
    """What the desk (and the patron) see of one patron."""

    customer: Customer
    standing: Standing
    loans: list[Rental]
    holds: list[Hold]
    payments: list[Payment]
    history: list[Rental] = field(default_factory=list)
    now: datetime = field(default_factory=timezone.now)

    @property
    def overdue(self) -> int:
        return sum(1 for r in self.loans if r.due_at < self.now)

    @property
    def blocks(self) -> list[str]:
        return patron_blocks(self.customer, self.standing)


def patron_blocks(customer: Customer, standing: Standing) -> list[str]:
    """Why this patron cannot borrow right now, in words (empty: they can): the panel's blocks, and what the
    desk's scan answers with after a checkout."""
    from bazaar.rentals import conf

    out = []
    if customer.status == "blocked":
        out.append("Blocked at the desk.")
    if standing.open_rentals >= conf.max_open_rentals():
        out.append(f"{standing.open_rentals} loans out; the limit is {conf.max_open_rentals()}.")
    if standing.balance > conf.max_balance():
        out.append(f"Owes {standing.balance}; the limit is {conf.max_balance()}.")
    return out


def patron_loans(*, customer_id: int, now: datetime) -> list[Rental]:
    """A patron's open loans, soonest due first, each with the charge so far (``so_far``): the panel's loans
    table, and what the desk's scan answers with after a checkout (one query)."""
    loans = list(
        Rental.objects.select_related("copy", "title")
        .filter(customer_id=customer_id, returned_at__isnull=True)
        .order_by("due_at", "id")
    )
    for r in loans:
        r.so_far = estimate(r, now).total  # type: ignore[attr-defined]
    return loans


def patron_panel(*, customer_id: int, history: bool = False, now: datetime | None = None) -> Panel:
    """One patron's loans (soonest due first, each with the charge so far), active holds with their queue
    positions, last payments, standing (balance, open loans) and, when ``history`` is asked and the patron keeps
    one, their past loans. NotFound ``customer_not_found``."""
    now = now or timezone.now()
    customer = customer_get(customer_id=customer_id)
    loans = patron_loans(customer_id=customer.pk, now=now)
    past: list[Rental] = []
    if history and customer.keep_history:
        past = list(
            Rental.objects.select_related("copy", "title")
            .filter(customer_id=customer.pk, returned_at__isnull=False)
            .order_by("-returned_at", "-id")[:100]
        )
    return Panel(
        customer=customer,
        standing=customer_standing(customer_id=customer.pk),
        loans=loans,
        holds=holds_with_positions(Hold.objects.filter(customer_id=customer.pk)),
        payments=list(Payment.objects.filter(customer_id=customer.pk).order_by("-received_at", "-id")[:20]),
        history=past,
        now=now,
    )


def title_copies(*, title_id: int) -> dict[str, Any]:
    """A title page's shelf: each copy in stock with its status and, when out, its due date (no borrower), and
    the hold queue's length. NotFound ``title_not_found``."""
    title = Title.objects.filter(pk=title_id).annotate(
        queue=Count("holds", filter=Q(holds__closed_at__isnull=True))
    )
    found = title.first()
    if found is None:
        raise NotFound("No such title.", code="title_not_found")
    copies = list(Copy.objects.filter(title_id=title_id, state__in=IN_STOCK).order_by("id"))
    due = dict(
        Rental.objects.filter(title_id=title_id, returned_at__isnull=True).values_list("copy_id", "due_at")
    )
    for c in copies:
        c.due_at = due.get(c.pk)  # type: ignore[attr-defined]
    return {"copies": copies, "queue": found.queue}


def rental_receipt(*, rental_id: int) -> dict[str, Any]:
    """A returned rental's receipt: the rental, its stored charge breakdown and the hold the copy is put aside
    for (if any). NotFound ``rental_not_found``."""
    rental = Rental.objects.select_related("customer", "copy", "title").filter(pk=rental_id).first()
    if rental is None:
        raise NotFound("No such rental.", code="rental_not_found")
    put_aside = None
    if rental.returned_at is not None:
        put_aside = (
            Hold.objects.select_related("customer")
            .filter(title_id=rental.title_id, closed_at__isnull=True, ready_at__gte=rental.returned_at)
            .order_by("ready_at", "id")
            .first()
        )
    return {
        "rental": rental,
        "breakdown": rental.breakdown or {},
        "put_aside": put_aside,
        "put_aside_label": patron_label(put_aside.customer) if put_aside else "",
    }


def payment_receipt(*, payment_id: int) -> dict[str, Any]:
    """A payment's receipt with the patron's balance after it. NotFound ``payment_not_found``."""
    payment = Payment.objects.select_related("customer", "received_by").filter(pk=payment_id).first()
    if payment is None:
        raise NotFound("No such payment.", code="payment_not_found")
    return {"payment": payment, "balance": customer_standing(customer_id=payment.customer_id).balance}
