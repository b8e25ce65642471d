"""Catalogue writes: titles, copies (stock) and price plans."""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction

from bazaar.core.errors import Conflict, NotFound, ValidationFailed
from bazaar.rentals import conf
from bazaar.rentals.isbn import isbn_valid, normalize_isbn
from bazaar.rentals.models import Copy, CopyState, Kind, PricePlan, Title
from bazaar.rentals.pricing import PlanTerms

MAX_COPIES_PER_CALL = 500


def _clean_isbn(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    isbn = normalize_isbn(raw)
    if isbn is None or not isbn_valid(isbn):
        raise ValidationFailed(
            "The ISBN is not a valid ISBN-10 or ISBN-13.", code="invalid_isbn", details={"isbn": raw}
        )
    return isbn


def clean_kind(kind: str) -> str:
    if kind not in Kind.values:
        raise ValidationFailed(
            f"kind must be one of {', '.join(Kind.values)}.", code="invalid_kind", details={"kind": kind}
        )
    return kind


def _required(value: str | None, field: str, max_len: int) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationFailed(f"{field} is required.", code="required", details={"field": field})
    if len(value) > max_len:
        raise ValidationFailed(f"{field} is too long.", code="too_long", details={"field": field})
    return value


def _new_barcode() -> str:
    return "C" + secrets.token_hex(5).upper()


def title_create(
    *,
    title: str,
    author: str,
    kind: str = Kind.REGULAR,
    isbn: str | None = None,
    description: str = "",
    copies: int = 0,
) -> Title:
    """Add a title, optionally with ``copies`` new copies (generated barcodes).

    Validates the ISBN checksum when one is given (ValidationFailed ``invalid_isbn``); a taken ISBN is Conflict
    ``isbn_taken``. Nothing is written on any error. Invalidates the catalogue after commit.
    """
    clean = {
        "title": _required(title, "title", 300),
        "author": _required(author, "author", 200),
        "kind": clean_kind(kind),
        "isbn": _clean_isbn(isbn),
        "description": description or "",
    }
    if copies < 0 or copies > MAX_COPIES_PER_CALL:
        raise ValidationFailed(f"copies must be 0..{MAX_COPIES_PER_CALL}.", code="invalid_count")
    try:
        with transaction.atomic():
            obj = Title.objects.create(**clean)
            Copy.objects.bulk_create([Copy(title=obj, barcode=_new_barcode()) for _ in range(copies)])
    except IntegrityError:
        raise Conflict(
            "A title with that ISBN exists already.", code="isbn_taken", details={"isbn": clean["isbn"]}
        )
    return obj


def title_update(*, title_id: int, **fields: Any) -> Title:
    """Change a title's fields (title, author, kind, isbn, description); only the given ones.

    Kind changes affect future rentals only (open rentals keep their price terms). Errors as ``title_create``
    plus NotFound ``title_not_found``. Locks the title row.
    """
    clean: dict[str, Any] = {}
    if "title" in fields:
        clean["title"] = _required(fields["title"], "title", 300)
    if "author" in fields:
        clean["author"] = _required(fields["author"], "author", 200)
    if "kind" in fields:
        clean["kind"] = clean_kind(fields["kind"])
    if "isbn" in fields:
        clean["isbn"] = _clean_isbn(fields["isbn"])
    if "description" in fields:
        clean["description"] = fields["description"] or ""
    try:
        with transaction.atomic():
            obj = Title.objects.select_for_update().filter(pk=title_id).first()
            if obj is None:
                raise NotFound("No such title.", code="title_not_found")
            for k, v in clean.items():
                setattr(obj, k, v)
            obj.save()
    except IntegrityError:
        raise Conflict(
            "A title with that ISBN exists already.", code="isbn_taken", details={"isbn": clean.get("isbn")}
        )
    return obj


def copies_add(*, title_id: int, count: int = 0, barcodes: list[str] | None = None) -> list[Copy]:
    """Add stock: ``count`` copies with generated barcodes and/or copies with the given ``barcodes``.

    ValidationFailed ``invalid_count`` (nothing to add, or too many), Conflict ``barcode_taken`` (a barcode
    exists, or is repeated), NotFound ``title_not_found``. All or nothing. Invalidates the catalogue and title.
    """
    given = [b.strip() for b in (barcodes or [])]
    if any(not b or len(b) > 32 for b in given):
        raise ValidationFailed("Barcodes must be 1..32 characters.", code="invalid_barcode")
    if len(set(given)) != len(given):
        raise Conflict("A barcode is repeated.", code="barcode_taken")
    total = count + len(given)
    if count < 0 or total < 1 or total > MAX_COPIES_PER_CALL:
        raise ValidationFailed(f"Add between 1 and {MAX_COPIES_PER_CALL} copies.", code="invalid_count")
    try:
        with transaction.atomic():
            if not Title.objects.filter(pk=title_id).exists():
                raise NotFound("No such title.", code="title_not_found")
            new = [Copy(title_id=title_id, barcode=b) for b in given]
            new += [Copy(title_id=title_id, barcode=_new_barcode()) for _ in range(count)]
            created = Copy.objects.bulk_create(new)
    except IntegrityError:
        raise Conflict("A barcode exists already.", code="barcode_taken")
    if any(c.pk is None for c in created):  # SQLite without RETURNING support: read them back
        created = list(Copy.objects.filter(barcode__in=[c.barcode for c in new]).order_by("id"))
    return created


def copy_set_state(*, copy_id: int, state: str) -> Copy:
    """Mark a copy available, lost or withdrawn (not rented: that is what renting does).

    A copy in an open rental cannot change state here (Conflict ``copy_rented``: return it first), nor one put
    aside for a hold (Conflict ``copy_on_hold``: cancel the hold first).
    ValidationFailed ``invalid_state``; NotFound ``copy_not_found``. Locks the copy row.
    """
    allowed = {CopyState.AVAILABLE, CopyState.LOST, CopyState.WITHDRAWN}
    if state not in allowed:
        raise ValidationFailed(
            "state must be available, lost or withdrawn.", code="invalid_state", details={"state": state}
        )
    with transaction.atomic():
        copy = Copy.objects.select_for_update().filter(pk=copy_id).first()
        if copy is None:
            raise NotFound("No such copy.", code="copy_not_found")
        if copy.state == CopyState.RENTED:
            raise Conflict("The copy is rented; return it first.", code="copy_rented")
        if copy.state == CopyState.ON_HOLD:
            raise Conflict("The copy is put aside for a hold; cancel the hold first.", code="copy_on_hold")
        if copy.state != state:
            copy.state = state
            copy.save(update_fields=["state"])
    return copy


PLAN_FIELDS = {
    "daily_rate": "money",
    "intro_days": "int",
    "intro_rate": "money",
    "minimum_charge": "money",
    "minimum_below_days": "int_or_null",
    "loan_days": "int",
    "fine_per_day": "money",
    "fine_grace_days": "int",
    "fine_cap": "money_or_null",
}


def _plan_value(name: str, value: Any) -> Any:
    kind = PLAN_FIELDS[name]
    if value is None:
        if kind.endswith("_or_null"):
            return None
        raise ValidationFailed(f"{name} is required.", code="invalid_plan", details={"field": name})
    if kind.startswith("money"):
        try:
            dec = Decimal(str(value))
        except InvalidOperation:
            raise ValidationFailed(f"{name} is not a number.", code="invalid_plan", details={"field": name})
        if (
            not dec.is_finite()
            or dec < 0
            or dec >= Decimal("1000000")  # before quantize(): a huge number would raise InvalidOperation
            or dec != dec.quantize(Decimal("0.01"))
        ):
            raise ValidationFailed(
                f"{name} must be a non-negative amount with at most 2 decimals.",
                code="invalid_plan",
                details={"field": name},
            )
        return dec
    iv = int(value)
    if iv < 0 or iv > 3650 or (name == "loan_days" and iv < 1):
        raise ValidationFailed(f"{name} is out of range.", code="invalid_plan", details={"field": name})
    return iv


def plan_update(*, kind: str, **fields: Any) -> PricePlan:
    """Change the price plan of a kind (created from the defaults if missing); only the given fields.

    Open rentals keep the terms they started with; only rentals started afterwards use the new prices.
    ValidationFailed ``invalid_plan`` / ``invalid_kind``. Locks the plan row.
    """
    clean_kind(kind)
    clean = {k: _plan_value(k, v) for k, v in fields.items() if k in PLAN_FIELDS}
    unknown = set(fields) - set(PLAN_FIELDS)
    if unknown:
        raise ValidationFailed(
            "Unknown plan fields.", code="invalid_plan", details={"fields": sorted(unknown)}
        )
    with transaction.atomic():
        plan = PricePlan.objects.select_for_update().filter(kind=kind).first()
        if plan is None:
            plan = PricePlan(kind=kind, **conf.DEFAULT_PLANS[kind])
        for k, v in clean.items():
            setattr(plan, k, v)
        plan.save()
    return plan


def plan_terms(kind: str) -> PlanTerms:
    """The current terms of a kind's plan (the defaults from conf when no plan row exists)."""
    plan = PricePlan.objects.filter(kind=kind).first()
    if plan is None:
        return PlanTerms(kind=kind, **conf.DEFAULT_PLANS[kind])  # type: ignore[arg-type]
    return terms_of(plan)


def terms_of(plan: PricePlan) -> PlanTerms:
    return PlanTerms(
        kind=plan.kind,
        daily_rate=plan.daily_rate,
        intro_days=plan.intro_days,
        intro_rate=plan.intro_rate,
        minimum_charge=plan.minimum_charge,
        minimum_below_days=plan.minimum_below_days,
        loan_days=plan.loan_days,
        fine_per_day=plan.fine_per_day,
        fine_grace_days=plan.fine_grace_days,
        fine_cap=plan.fine_cap,
    )
