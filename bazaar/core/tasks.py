"""Core tasks: a ping that proves a real worker executes what a request enqueued; the periodic-task registry.

Task names follow one convention: ``<app label>.<name>`` (``rentals.send_reminders``).
"""

from __future__ import annotations

from celery import current_app, shared_task

from bazaar.core import cache


@shared_task(name="core.ping")
def ping(key: str, value: str) -> str:
    """Store ``value`` under the raw cache key ``key`` (tests read it back to see the worker ran)."""
    cache.set_raw(cache.raw_key("core", "ping", key), value.encode(), 300)
    return value


def periodic(entry: str, *, task: str, every: float) -> None:
    """Run ``task`` every ``every`` seconds on Celery beat. Apps call this from ``AppConfig.ready`` instead of
    reaching into the Celery app in ``bazaar.config``; ``entry`` names the schedule entry (``<app>-<what>``)."""
    current_app.conf.beat_schedule[entry] = {"task": task, "schedule": float(every)}
