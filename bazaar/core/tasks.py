"""Core tasks: a ping that proves a real worker executes what a request enqueued."""

from __future__ import annotations

from celery import shared_task

from bazaar.core import cache


@shared_task(name="core.ping")
def ping(key: str, value: str) -> str:
    """Store ``value`` under the raw cache key ``key`` (tests read it back to see the worker ran)."""
    cache.set_raw(cache.raw_key("core", "ping", key), value.encode(), 300)
    return value
