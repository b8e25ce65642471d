"""The charge function: pure, no database, no clock. Everything a statement shows comes out of here.

Rules (docs/rentals.md):

* **Days rented** = whole days between rent and return, rounded down, at least 1 (Koko's rule): 23 hours is 1
  day, 47 hours is 1 day, 48 hours is 2 days.
* **Rental charge** = introductory rate for the first ``intro_days`` days + daily rate for every day after; each
  rate line is rounded half-up to cents. If the plan has a minimum charge and it applies (always, or only when
  the rental lasted fewer than ``minimum_below_days`` days), the rental charge is at least the minimum.
* **Fine**: days late = whole days between the due time and the return, rounded down (a return less than a full
  day after the due time is not late). The first ``fine_grace_days`` late days are free; each later day costs
  ``fine_per_day``; the fine never exceeds ``fine_cap`` (when set).
* **Total** = rental charge + fine. Money is ``Decimal``, quantized to cents with ROUND_HALF_UP.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
DAY = timedelta(days=1)


def money(value: Decimal | int | str) -> Decimal:
    """Round half-up to cents (the only rounding used for money)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class PlanTerms:
    """A price plan's terms, as snapshotted onto a rental when it starts (later plan edits do not touch it)."""

    kind: str
    daily_rate: Decimal
    intro_days: int = 0
    intro_rate: Decimal = Decimal("0")
    minimum_charge: Decimal = Decimal("0")
    minimum_below_days: int | None = None
    loan_days: int = 14
    fine_per_day: Decimal = Decimal("0")
    fine_grace_days: int = 0
    fine_cap: Decimal | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, Decimal):
                out[k] = str(v)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlanTerms:
        def dec(name: str, default: str = "0") -> Decimal:
            return Decimal(str(data.get(name, default)))

        cap = data.get("fine_cap")
        below = data.get("minimum_below_days")
        return cls(
            kind=str(data["kind"]),
            daily_rate=dec("daily_rate"),
            intro_days=int(data.get("intro_days", 0)),
            intro_rate=dec("intro_rate"),
            minimum_charge=dec("minimum_charge"),
            minimum_below_days=int(below) if below is not None else None,
            loan_days=int(data.get("loan_days", 14)),
            fine_per_day=dec("fine_per_day"),
            fine_grace_days=int(data.get("fine_grace_days", 0)),
            fine_cap=Decimal(str(cap)) if cap is not None else None,
        )


@dataclass(frozen=True)
class Line:
    label: str
    days: int
    rate: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Breakdown:
    """A charge and how it was reached (stored on the rental as JSON for statements)."""

    kind: str
    days: int
    lines: tuple[Line, ...]
    subtotal: Decimal
    minimum_charge: Decimal
    minimum_applied: bool
    rental_charge: Decimal
    late_days: int
    fine_days: int
    fine_per_day: Decimal
    fine: Decimal
    fine_capped: bool
    total: Decimal

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "days": self.days,
            "lines": [
                {"label": ln.label, "days": ln.days, "rate": str(ln.rate), "amount": str(ln.amount)}
                for ln in self.lines
            ],
            "subtotal": str(self.subtotal),
            "minimum_charge": str(self.minimum_charge),
            "minimum_applied": self.minimum_applied,
            "rental_charge": str(self.rental_charge),
            "late_days": self.late_days,
            "fine_days": self.fine_days,
            "fine_per_day": str(self.fine_per_day),
            "fine": str(self.fine),
            "fine_capped": self.fine_capped,
            "total": str(self.total),
        }


def whole_days(start: datetime, end: datetime) -> int:
    """Whole days from ``start`` to ``end``, rounded down (0 when ``end`` is not after ``start``)."""
    if end <= start:
        return 0
    return (end - start) // DAY


def days_rented(rented_at: datetime, returned_at: datetime) -> int:
    """Koko's rule: whole days between rent and return, rounded down, at least 1."""
    return max(1, whole_days(rented_at, returned_at))


def days_late(due_at: datetime, returned_at: datetime) -> int:
    """Whole days after the due time, rounded down (0 when returned on time)."""
    return whole_days(due_at, returned_at)


def compute(terms: PlanTerms, *, days: int, late_days: int = 0) -> Breakdown:
    """The charge for ``days`` rented days and ``late_days`` days past due under ``terms``."""
    if days < 1:
        raise ValueError("days must be at least 1")
    late_days = max(0, late_days)
    lines: list[Line] = []
    intro = min(days, max(0, terms.intro_days))
    if intro:
        lines.append(
            Line(
                f"first {intro} day{'s' if intro != 1 else ''} at {money(terms.intro_rate)}",
                intro,
                money(terms.intro_rate),
                money(terms.intro_rate * intro),
            )
        )
    rest = days - intro
    if rest:
        lines.append(
            Line(
                f"{rest} day{'s' if rest != 1 else ''} at {money(terms.daily_rate)}",
                rest,
                money(terms.daily_rate),
                money(terms.daily_rate * rest),
            )
        )
    subtotal = money(sum((ln.amount for ln in lines), Decimal("0")))
    minimum = money(terms.minimum_charge)
    applies = terms.minimum_below_days is None or days < terms.minimum_below_days
    minimum_applied = applies and subtotal < minimum
    rental_charge = minimum if minimum_applied else subtotal
    fine_days = max(0, late_days - max(0, terms.fine_grace_days))
    fine = money(terms.fine_per_day * fine_days)
    fine_capped = False
    if terms.fine_cap is not None and fine > money(terms.fine_cap):
        fine, fine_capped = money(terms.fine_cap), True
    return Breakdown(
        kind=terms.kind,
        days=days,
        lines=tuple(lines),
        subtotal=subtotal,
        minimum_charge=minimum,
        minimum_applied=minimum_applied,
        rental_charge=rental_charge,
        late_days=late_days,
        fine_days=fine_days,
        fine_per_day=money(terms.fine_per_day),
        fine=fine,
        fine_capped=fine_capped,
        total=money(rental_charge + fine),
    )


def charge_for(
    terms: PlanTerms, *, rented_at: datetime, due_at: datetime, returned_at: datetime
) -> Breakdown:
    """The charge of a rental returned at ``returned_at`` (days and late days from the timestamps)."""
    return compute(terms, days=days_rented(rented_at, returned_at), late_days=days_late(due_at, returned_at))
