"""Rentals settings: typed accessors over ``django.conf.settings.RENTALS_<NAME>`` (parsed from the environment
variable of the same name, with its default, in ``bazaar/config/settings/base.py``).

Functions, not module constants, so tests can change them with ``settings`` overrides.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings


def max_open_rentals() -> int:
    """A customer with this many open rentals cannot rent another (RENTALS_MAX_OPEN_RENTALS, default 5)."""
    return int(settings.RENTALS_MAX_OPEN_RENTALS)


def max_balance() -> Decimal:
    """A customer owing more than this cannot rent (RENTALS_MAX_BALANCE, default 20.00)."""
    return Decimal(str(settings.RENTALS_MAX_BALANCE))


def max_renewals() -> int:
    """How many times one rental may be renewed (RENTALS_MAX_RENEWALS, default 2)."""
    return int(settings.RENTALS_MAX_RENEWALS)


def reminder_interval() -> int:
    """Seconds between Celery beat runs of the reminder task (each run is idempotent per rental and day;
    RENTALS_REMINDER_INTERVAL, default 3600)."""
    return int(settings.RENTALS_REMINDER_INTERVAL)


def export_dir() -> str:
    """Folder under MEDIA_ROOT where CSV exports are written (RENTALS_EXPORT_DIR, default rentals/exports)."""
    return str(settings.RENTALS_EXPORT_DIR)


def catalogue_ttl() -> int:
    """TTL (seconds) of cached catalogue pages; invalidation is by generation, this is the backstop
    (RENTALS_CATALOGUE_TTL, default 900)."""
    return int(settings.RENTALS_CATALOGUE_TTL)


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
    """How many days a copy put aside for a hold waits at the desk before the hold lapses
    (RENTALS_HOLD_PICKUP_DAYS, default 7)."""
    return int(settings.RENTALS_HOLD_PICKUP_DAYS)
