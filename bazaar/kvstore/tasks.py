"""Kvstore Celery tasks (thin: they call services)."""

from __future__ import annotations

from celery import shared_task

from bazaar.kvstore.services import changes_compact, entries_purge_expired


@shared_task(name="kvstore.purge_expired", ignore_result=True)
def purge_expired() -> int:
    """Delete expired and deleted entries (run by Celery beat every KVSTORE_PURGE_INTERVAL seconds)."""
    return entries_purge_expired()


@shared_task(name="kvstore.compact_history", ignore_result=True)
def compact_history() -> int:
    """Trim every tenant's change log to its retention (run by Celery beat every KVSTORE_COMPACT_INTERVAL s)."""
    return changes_compact()
