"""The desk: rent, return and renew. Lock order everywhere: customer, then rental, then copy."""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from bazaar.accounts.models import User
from bazaar.core import sql
from bazaar.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from bazaar.rentals import cache, conf, pricing
from bazaar.rentals.models import (
    Copy,
    CopyState,
    Customer,
    CustomerStatus,
    Hold,
    PricePlan,
    Rental,
    Title,
)
from bazaar.rentals.selectors import Standing, customer_standing, patrons, standing_columns, standing_from_row
from bazaar.rentals.services.catalogue import plan_terms, terms_of
from bazaar.rentals.services.customers import copy_pass_on, hold_put_aside


def rental_rent(
    *,
    customer_id: int,
    title_id: int | None = None,
    copy_id: int | None = None,
    barcode: str | None = None,
    due_at: datetime | None = None,
    by: User | None = None,
) -> Rental:
    """Lend a copy: a free copy of ``title_id``, or the given copy (``copy_id`` or ``barcode``).

    Refused (Conflict, nothing written) when the customer is blocked (``customer_blocked``), has
    ``max_open_rentals`` open rentals (``rental_limit_reached``), owes more than ``max_balance``
    (``balance_too_high``), no copy of the title is free (``no_copy_available``) or the given copy is not free
    (``copy_not_available``; ``copy_on_hold`` when it is put aside for another patron's hold). ValidationFailed
    ``title_or_copy`` / ``invalid_due_date`` (not in the future); NotFound ``customer_not_found`` / ``title_not_found`` / ``copy_not_found``.

    Locks the customer row first (so limit checks cannot race with the same customer's other rentals), then
    the copy: ``SKIP LOCKED`` when picking a free copy, so concurrent clerks take different copies instead of
    queueing. The partial unique index on open rentals per copy is the last word if anything slips through.
    The rental snapshots the price plan's terms. Invalidates the catalogue and title after commit.
    """
    if (title_id is None) == (copy_id is None and not barcode):
        raise ValidationFailed("Give either a title or a copy (id or barcode).", code="title_or_copy")
    now = timezone.now()
    if due_at is not None and due_at <= now:
        raise ValidationFailed("The due date must be in the future.", code="invalid_due_date")
    try:
        with transaction.atomic():
            customer = _lock_customer(customer_id)
            if customer is None:
                raise NotFound("No such customer.", code="customer_not_found")
            if customer.status == CustomerStatus.BLOCKED:
                raise Conflict("The customer is blocked.", code="customer_blocked")
            copy: Copy | None = None
            terms: pricing.PlanTerms | None = None
            if title_id is not None:
                # One statement picks and locks a free copy with its title and plan, and reads the standing (the
                # customer row is locked already, so the counts are current); SKIP LOCKED so concurrent clerks
                # take different copies instead of queueing behind each other. A refusal below rolls it back.
                copy, terms, picked_standing = _pick_copy(title_id, customer.pk)
            standing = picked_standing if copy is not None else customer_standing(customer_id=customer.pk)
            limit = conf.max_open_rentals()
            if standing.open_rentals >= limit:
                raise Conflict(
                    f"The customer has {standing.open_rentals} open rentals; the limit is {limit}.",
                    code="rental_limit_reached",
                    details={"open_rentals": standing.open_rentals, "limit": limit},
                )
            ceiling = conf.max_balance()
            if standing.balance > ceiling:
                raise Conflict(
                    f"The customer owes {standing.balance}; the limit is {ceiling}.",
                    code="balance_too_high",
                    details={"balance": str(standing.balance), "limit": str(ceiling)},
                )
            if title_id is not None:
                if copy is None:
                    if not Title.objects.filter(pk=title_id).exists():
                        raise NotFound("No such title.", code="title_not_found")
                    raise Conflict(
                        "No copy of this title is free.",
                        code="no_copy_available",
                        details={"title_id": title_id},
                    )
            else:
                lookup: dict[str, object] = (
                    {"pk": copy_id} if copy_id is not None else {"barcode": (barcode or "").strip()}
                )
                copy = (
                    Copy.objects.select_for_update(of=("self",))
                    .select_related("title")
                    .filter(**lookup)
                    .first()
                )
                if copy is None:
                    raise NotFound("No such copy.", code="copy_not_found")
                if copy.state == CopyState.ON_HOLD:
                    # Put aside for a hold: only that hold's patron may borrow it.
                    waiting = Hold.objects.filter(copy_id=copy.pk, closed_at__isnull=True).first()
                    if waiting is None or waiting.customer_id != customer.pk:
                        where = patrons.copy_whereabouts(barcode=copy.barcode) or copy.state
                        raise Conflict(
                            f"The copy is {where}.",
                            code="copy_on_hold",
                            details={"copy_id": copy.pk, "state": copy.state},
                        )
                elif copy.state != CopyState.AVAILABLE:
                    # In words for the desk: "rented to #1042 Asha K., due 12 Dec" (refusals only: off the hot path).
                    where = patrons.copy_whereabouts(barcode=copy.barcode) or copy.state
                    raise Conflict(
                        f"The copy is {where}.",
                        code="copy_not_available",
                        details={"copy_id": copy.pk, "state": copy.state},
                    )
            title = copy.title
            if terms is None:
                terms = plan_terms(title.kind)
            rental = Rental(
                customer_id=customer.pk,
                copy_id=copy.pk,
                title_id=title.pk,
                rented_at=now,
                due_at=due_at or now + timedelta(days=terms.loan_days),
                terms=terms.to_json(),
                rented_by=by,
            )
            # The rental and the copy's new state in one statement (PostgreSQL; two on SQLite).
            sql.insert(
                [rental],
                _RENTAL_FIELDS,
                with_sql=_take_copy_sql(),
                with_params=[CopyState.RENTED.value, copy.pk],
            )
            if standing.active_holds:  # renting a title the customer waited for fulfils the hold
                _fulfil_holds(customer.pk, title.pk, copy.pk, now)
            cache.invalidate_title(title.pk)
    except IntegrityError:
        # The partial unique index caught a second open rental of the copy: nothing was written.
        raise Conflict("The copy is already rented.", code="copy_not_available")
    copy.state = CopyState.RENTED
    rental.copy = copy
    rental.title = title
    rental.customer = customer
    return rental


def _fulfil_holds(customer_id: int, title_id: int, copy_id: int, now: datetime) -> None:
    """The customer borrowed the title they waited for: close their hold; a copy put aside for it that is not the
    one they took goes to the next patron in the queue (``copy_pass_on``)."""
    holds = list(
        Hold.objects.select_for_update().filter(
            customer_id=customer_id, title_id=title_id, closed_at__isnull=True
        )
    )
    Hold.objects.filter(pk__in=[h.pk for h in holds]).update(closed_at=now)
    for hold in holds:
        if hold.copy_id is not None and hold.copy_id != copy_id:
            copy_pass_on(copy_id=hold.copy_id, now=now)


def rental_return(*, rental_id: int, returned_at: datetime | None = None, by: User | None = None) -> Rental:
    """Close a rental, store its charge and breakdown (from the terms it started with) and free the copy.

    ``returned_at`` defaults to the server's clock; staff may backdate it but never before the rent time or
    into the future (ValidationFailed ``return_before_rent`` / ``return_in_future``, 422). Returning twice is
    Conflict ``already_returned`` (409) with the first return's ids and charge in ``details``: the charge is
    stored once. NotFound ``rental_not_found``. Locks the rental row, then updates the copy.
    """
    now = timezone.now()
    if returned_at is not None and returned_at > now:
        raise ValidationFailed("The return time cannot be in the future.", code="return_in_future")
    with transaction.atomic():
        rental = _lock_rental(rental_id)
        if rental is None:
            raise NotFound("No such rental.", code="rental_not_found")
        if rental.returned_at is not None:
            raise Conflict(
                "This rental was returned already.",
                code="already_returned",
                details={
                    "rental_id": rental.pk,
                    "copy_id": rental.copy_id,
                    "returned_at": rental.returned_at.isoformat(),
                    "charge": str(rental.charge),
                },
            )
        at = returned_at or now
        if at < rental.rented_at:
            raise ValidationFailed(
                "The return time cannot be before the rent time.",
                code="return_before_rent",
                details={"rented_at": rental.rented_at.isoformat()},
            )
        breakdown = pricing.charge_for(
            pricing.PlanTerms.from_json(rental.terms),
            rented_at=rental.rented_at,
            due_at=rental.due_at,
            returned_at=at,
        )
        rental.returned_at = at
        rental.charge = breakdown.total
        rental.breakdown = breakdown.to_json()
        rental.returned_by = by
        # The rental closed and its copy freed in one statement (PostgreSQL; two on SQLite).
        sql.update(
            rental,
            ("returned_at", "charge", "breakdown", "returned_by"),
            with_sql=_free_copy_sql(),
            with_params=[CopyState.AVAILABLE.value, rental.copy_id, CopyState.RENTED.value],
        )
        cache.invalidate_title(rental.title_id)
    rental.copy.state = CopyState.AVAILABLE
    return rental


def rental_return_copy(
    *, barcode: str, returned_at: datetime | None = None, by: User | None = None
) -> Rental:
    """Return whatever open rental holds the copy with ``barcode`` (the desk scans the book).

    NotFound ``copy_not_found``; Conflict ``copy_not_rented`` when the copy has no open rental. Then as
    ``rental_return`` (a concurrent return of the same rental is Conflict ``already_returned``).
    """
    barcode = (barcode or "").strip()
    rental_id = (
        Rental.objects.filter(copy__barcode=barcode, returned_at__isnull=True)
        .values_list("pk", flat=True)
        .first()
    )
    if rental_id is None:
        if not Copy.objects.filter(barcode=barcode).exists():
            raise NotFound("No such copy.", code="copy_not_found")
        raise Conflict("The copy is not rented.", code="copy_not_rented")
    return rental_return(rental_id=rental_id, returned_at=returned_at, by=by)


def rental_renew(*, rental_id: int, customer_id: int | None = None) -> Rental:
    """Extend an open rental's due date by its loan period (counted from the later of now and the due date).

    Conflict (nothing written): ``rental_closed``; ``rental_overdue`` (an overdue rental is returned, so its fine
    is charged, not renewed away); ``renewal_limit_reached`` (``max_renewals``); ``title_waited_for`` (another
    customer holds the title and no copy is free). NotFound ``rental_not_found`` (also when ``customer_id`` is
    given and the rental is someone else's: a patron renewing from their account). Locks the rental row. The
    title page shows due dates: its scope is invalidated after commit.
    """
    now = timezone.now()
    with transaction.atomic():
        rental = Rental.objects.select_for_update().filter(pk=rental_id).first()
        if rental is None or (customer_id is not None and rental.customer_id != customer_id):
            raise NotFound("No such rental.", code="rental_not_found")
        if rental.returned_at is not None:
            raise Conflict("The rental is closed.", code="rental_closed")
        if rental.due_at < now:
            raise Conflict("The rental is overdue; return it instead.", code="rental_overdue")
        limit = conf.max_renewals()
        if rental.renewals >= limit:
            raise Conflict(
                f"The rental was renewed {rental.renewals} times; the limit is {limit}.",
                code="renewal_limit_reached",
                details={"renewals": rental.renewals, "limit": limit},
            )
        waiting = (
            Hold.objects.filter(title_id=rental.title_id, closed_at__isnull=True)
            .exclude(customer_id=rental.customer_id)
            .exists()
        )
        if waiting and not Copy.objects.filter(title_id=rental.title_id, state=CopyState.AVAILABLE).exists():
            raise Conflict("Another customer is waiting for this title.", code="title_waited_for")
        terms = pricing.PlanTerms.from_json(rental.terms)
        rental.due_at = max(rental.due_at, now) + timedelta(days=terms.loan_days)
        rental.renewals += 1
        rental.save(update_fields=["due_at", "renewals"])
        cache.invalidate_title(rental.title_id)
    return rental


def rental_renew_all(*, customer_id: int) -> list[tuple[Rental, DomainError | None]]:
    """Renew every open rental of a customer, each on its own (``rental_renew``: one refusal does not undo the
    others). Returns (rental, None) for each renewed one and (rental, the refusal) for each refused one, soonest
    due first. NotFound ``customer_not_found``. Locks each rental in turn."""
    if not Customer.objects.filter(pk=customer_id).exists():
        raise NotFound("No such customer.", code="customer_not_found")
    out: list[tuple[Rental, DomainError | None]] = []
    for rental in (
        Rental.objects.select_related("title", "copy")
        .filter(customer_id=customer_id, returned_at__isnull=True)
        .order_by("due_at", "id")
    ):
        try:
            renewed = rental_renew(rental_id=rental.pk)
        except DomainError as exc:
            out.append((rental, exc))
        else:
            renewed.title, renewed.copy = rental.title, rental.copy
            out.append((renewed, None))
    return out


def rental_checkin(*, barcode: str, by: User | None = None) -> tuple[Rental, Hold | None]:
    """The desk's check-in: return the copy now (``rental_return_copy``, same errors, nothing written on one),
    then, if patrons wait for the title, put the copy aside for the first of them (``hold_put_aside``: pickup
    notice e-mailed after commit). One transaction: the return and the put-aside commit together."""
    with transaction.atomic():
        rental = rental_return_copy(barcode=barcode, by=by)
        hold = hold_put_aside(copy_id=rental.copy_id)
    return rental, hold


# --- the hot path's statements, built once (bazaar.core.sql): rent and return run hundreds of times a second ---

_FK_FIELDS = frozenset({"customer", "copy", "title", "rented_by", "returned_by"})
_RENTAL_FIELDS = (
    "customer",
    "copy",
    "title",
    "rented_at",
    "due_at",
    "returned_at",
    "renewals",
    "terms",
    "charge",
    "breakdown",
    "rented_by",
    "returned_by",
)


@functools.cache
def _customer_sql() -> str:
    return f"SELECT id, name, status FROM {sql.table(Customer)} WHERE id = %s" + sql.lock_clause()  # noqa: S608


def _lock_customer(customer_id: int) -> Customer | None:
    """The customer row, locked (PostgreSQL): id, name and status loaded, the rest deferred."""
    with sql.cursor() as cur:
        cur.execute(_customer_sql(), [customer_id])
        row = cur.fetchone()
    if row is None:
        return None
    return sql.instance(Customer, {"id": row[0], "name": row[1], "status": row[2]})


#: The plan columns the pick reads: every term of ``pricing.PlanTerms`` but its kind, each a ``PricePlan`` field of
#: the same name (derived, so a new term is read without editing this statement).
_PLAN_COLUMNS = tuple(f.name for f in dataclasses.fields(pricing.PlanTerms) if f.name != "kind")


@functools.cache
def _pick_sql() -> str:
    c, t, pp = sql.table(Copy), sql.table(Title), sql.table(PricePlan)
    plan = ", ".join(f"pp.{col}" for col in _PLAN_COLUMNS)
    select = (
        f"SELECT c.id, c.barcode, t.id, t.title, t.kind, pp.id, {plan}, {standing_columns('%s')} FROM {c} c"  # noqa: S608
    )
    joins = f" JOIN {t} t ON t.id = c.title_id LEFT JOIN {pp} pp ON pp.kind = t.kind"
    where = " WHERE c.title_id = %s AND c.state = %s ORDER BY c.id LIMIT 1"
    return select + joins + where + sql.lock_clause(of="c", skip_locked=True)


def _pick_copy(title_id: int, customer_id: int) -> tuple[Copy | None, pricing.PlanTerms | None, Standing]:
    """A free copy of the title, locked with ``SKIP LOCKED`` (concurrent clerks take different copies instead
    of queueing), with its title, the title kind's current plan terms and the customer's standing — one
    statement. No free copy: (None, None, an empty standing the caller must not use)."""
    with sql.cursor() as cur:
        cur.execute(_pick_sql(), [*[customer_id] * 4, title_id, CopyState.AVAILABLE.value])
        row = cur.fetchone()
    if row is None:
        return None, None, Standing(0, pricing.money(0), pricing.money(0), 0)
    n = len(_PLAN_COLUMNS)
    standing = standing_from_row(row[6 + n :])
    title = sql.instance(Title, {"id": row[2], "title": row[3], "kind": row[4]})
    copy = sql.instance(
        Copy, {"id": row[0], "title_id": title.pk, "barcode": row[1], "state": CopyState.AVAILABLE}
    )
    copy.title = title
    if row[5] is None:  # no plan row for the kind: the defaults (as plan_terms)
        return copy, None, standing
    # Converted as the ORM converts them, and turned into terms by the one builder (catalogue.terms_of).
    plan = sql.load(PricePlan, ("id", "kind", *_PLAN_COLUMNS), [row[5], title.kind, *row[6 : 6 + n]])
    terms = terms_of(plan)
    return copy, terms, standing


#: The rental's columns as the lock reads them (named, never ``r.*``: a prepared statement must keep its shape).
_RENTAL_COLUMNS = ("id", *(f"{name}_id" if name in _FK_FIELDS else name for name in _RENTAL_FIELDS))


@functools.cache
def _rental_sql() -> str:
    r, cu, c, t = sql.table(Rental), sql.table(Customer), sql.table(Copy), sql.table(Title)
    cols = ", ".join(f"r.{col}" for col in _RENTAL_COLUMNS)
    select = f"SELECT {cols}, cu.name, c.barcode, c.state, t.title, t.kind FROM {r} r"  # noqa: S608
    joins = f" JOIN {cu} cu ON cu.id = r.customer_id JOIN {c} c ON c.id = r.copy_id"
    where = f" JOIN {t} t ON t.id = r.title_id WHERE r.id = %s"
    return select + joins + where + sql.lock_clause(of="r")


def _lock_rental(rental_id: int) -> Rental | None:
    """The rental row, locked (PostgreSQL), with the customer's name, the copy and the title it shows."""
    with sql.cursor() as cur:
        cur.execute(_rental_sql(), [rental_id])
        row = cur.fetchone()
    if row is None:
        return None
    n = len(_RENTAL_COLUMNS)
    rental = sql.load(Rental, _RENTAL_COLUMNS, row[:n])
    cu_name, barcode, state, title, kind = row[n:]
    rental.customer = sql.instance(Customer, {"id": rental.customer_id, "name": cu_name})
    rental.copy = sql.instance(
        Copy, {"id": rental.copy_id, "title_id": rental.title_id, "barcode": barcode, "state": state}
    )
    rental.title = sql.instance(Title, {"id": rental.title_id, "title": title, "kind": kind})
    return rental


@functools.cache
def _take_copy_sql() -> str:
    return f"UPDATE {sql.table(Copy)} SET state = %s WHERE id = %s"  # noqa: S608


@functools.cache
def _free_copy_sql() -> str:
    return f"UPDATE {sql.table(Copy)} SET state = %s WHERE id = %s AND state = %s"  # noqa: S608
