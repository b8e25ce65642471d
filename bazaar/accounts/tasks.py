"""Celery tasks (thin: they call services)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="accounts.prune_login_counters")
def prune_login_counters() -> int:
    """Periodic: delete database login counters whose window has ended."""
    from bazaar.accounts.services import login_counters_prune

    return login_counters_prune()
