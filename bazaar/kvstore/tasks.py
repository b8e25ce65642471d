"""Kvstore Celery tasks (thin: they call services)."""

from __future__ import annotations

from celery import shared_task

from bazaar.kvstore.services import entries_purge_expired


@shared_task(name="bazaar.kvstore.tasks.purge_expired", ignore_result=True)
def purge_expired() -> int:
    """Delete expired and deleted entries (run by Celery beat every KVSTORE_PURGE_INTERVAL seconds)."""
    return entries_purge_expired()
