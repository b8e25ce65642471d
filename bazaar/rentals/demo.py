"""Demo data for rentals (idempotent): called by `bazaar demo`."""

from __future__ import annotations


def load() -> list[str]:
    """Create the demo data if missing; return lines to print (URLs, logins)."""
    return []
