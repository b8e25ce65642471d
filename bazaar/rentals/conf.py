"""Rentals settings: each reads ``settings.RENTALS_<NAME>`` with an environment override, then a default.

Functions, not module constants, so tests can change them with ``settings`` overrides.
"""

from __future__ import annotations

import os
from decimal import Decimal

from django.conf import settings


def _get(name: str, default: str) -> str:
    return str(getattr(settings, f"RENTALS_{name}", os.environ.get(f"RENTALS_{name}", default)))


def max_open_rentals() -> int:
    """A customer with this many open rentals cannot rent another."""
    return int(_get("MAX_OPEN_RENTALS", "5"))


def max_balance() -> Decimal:
    """A customer owing more than this cannot rent."""
    return Decimal(_get("MAX_BALANCE", "20.00"))


def max_renewals() -> int:
    """How many times one rental may be renewed."""
    return int(_get("MAX_RENEWALS", "2"))


def reminder_interval() -> int:
    """Seconds between Celery beat runs of the reminder task (each run is idempotent per rental and day)."""
    return int(_get("REMINDER_INTERVAL", "3600"))


def export_dir() -> str:
    """Folder under MEDIA_ROOT where CSV exports are written."""
    return _get("EXPORT_DIR", "rentals/exports")


def catalogue_ttl() -> int:
    """TTL (seconds) of cached catalogue pages; invalidation is by generation, this is the backstop."""
    return int(_get("CATALOGUE_TTL", "900"))


#: Default price plans per kind (Koko's table) used when a plan row does not exist yet.
DEFAULT_PLANS: dict[str, dict[str, object]] = {
    "regular": {
        "daily_rate": Decimal("1.50"),
        "intro_days": 2,
        "intro_rate": Decimal("1.00"),
        "minimum_charge": Decimal("2.00"),
        "minimum_below_days": None,
        "loan_days": 14,
        "fine_per_day": Decimal("0.25"),
        "fine_grace_days": 1,
        "fine_cap": Decimal("5.00"),
    },
    "fiction": {
        "daily_rate": Decimal("3.00"),
        "intro_days": 0,
        "intro_rate": Decimal("0.00"),
        "minimum_charge": Decimal("0.00"),
        "minimum_below_days": None,
        "loan_days": 7,
        "fine_per_day": Decimal("0.50"),
        "fine_grace_days": 1,
        "fine_cap": Decimal("10.00"),
    },
    "novel": {
        "daily_rate": Decimal("1.50"),
        "intro_days": 0,
        "intro_rate": Decimal("0.00"),
        "minimum_charge": Decimal("4.50"),
        "minimum_below_days": 3,
        "loan_days": 14,
        "fine_per_day": Decimal("0.25"),
        "fine_grace_days": 1,
        "fine_cap": Decimal("5.00"),
    },
}


def hold_pickup_days() -> int:
    """How many days a copy put aside for a hold waits at the desk before the hold lapses."""
    return int(_get("HOLD_PICKUP_DAYS", "7"))
