"""Reads on a PostgreSQL streaming replica (``DATABASE_REPLICA_URL``), only where the code says so.

A read runs on the replica only inside :func:`reading` / :func:`replica_ok` (the public cached surfaces on a cache
miss are marked in core.surfaces; reports, exports and searches may mark their selectors), and only when the
replica has replayed everything the primary had written when the read began: one ``pg_current_wal_lsn()`` on the
primary, one ``pg_last_wal_replay_lsn()`` on the replica. That gives read-your-writes to every client at once,
whatever server its write went through, and it is what a cached entry needs: an entry built on a cache miss is
stored under the generation the reader saw, and that generation was bumped after the write committed, so a
replica that had not replayed the write would put old data under the new generation for everyone until the TTL.
Chosen over an LSN in the writer's cookie (docs/design-notes.md, "Issue 20"): the fast paths answer writes without
Django's middleware, and a cookie protects only its own client, not the shared entry it causes to be built.

Everything else goes to the primary (the router sends writes there always). A replica that is behind is skipped
for that read; one that fails (down, refused, broken mid-read) is skipped for ``DATABASE_REPLICA_RETRY_SECONDS``
and the read runs again on the primary, so a lost replica costs no error.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, connections

log = logging.getLogger("bazaar.replica")

ALIAS = "replica"
T = TypeVar("T")

_on_replica: ContextVar[bool] = ContextVar("bazaar_on_replica", default=False)
_down_until = 0.0
_lock = threading.Lock()
#: reads per outcome in this process: "replica", "behind" (primary: the replica had not replayed), "down"
counts: dict[str, int] = {"replica": 0, "behind": 0, "down": 0}


class Router:
    """Django database router: reads inside :func:`reading` go to the replica, everything else to the primary."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return ALIAS if _on_replica.get() else "default"

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return "default"

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # the same rows, one of them maybe a little older

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == "default"  # the replica follows the primary's WAL, schema included


def configured() -> bool:
    return ALIAS in settings.DATABASES


def _count(outcome: str) -> None:
    with _lock:
        counts[outcome] += 1


def _mark_down(exc: BaseException) -> None:
    global _down_until
    _down_until = time.monotonic() + settings.DATABASE_REPLICA_RETRY_SECONDS
    _count("down")
    log.warning("replica skipped for %ss: %s", settings.DATABASE_REPLICA_RETRY_SECONDS, exc)
    with contextlib.suppress(Exception):
        connections[ALIAS].close()


def caught_up() -> bool:
    """Whether the replica has replayed all the WAL the primary had written when this was asked."""
    with connections["default"].cursor() as cur:
        cur.execute("SELECT pg_current_wal_lsn()::text")
        primary = cur.fetchone()[0]
    with connections[ALIAS].cursor() as cur:
        cur.execute("SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)", [primary])
        return bool(cur.fetchone()[0])


def _replica_usable() -> bool:
    """The replica may serve this read: configured, not failed recently, and caught up with the primary."""
    if not configured() or _on_replica.get() or time.monotonic() < _down_until:
        return False
    try:
        if caught_up():
            return True
    except DatabaseError as exc:
        if connections["default"].is_usable():
            _mark_down(exc)
            return False
        raise  # the primary failed: the read would too; the usual error handling answers
    _count("behind")
    return False


def reading(fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` with its ORM reads on the replica when that is safe (module docstring), else on the primary."""

    def run() -> T:
        if not _replica_usable():
            return fn()
        token = _on_replica.set(True)
        try:
            result = fn()
        except DatabaseError as exc:
            _on_replica.reset(token)
            _mark_down(exc)
            return fn()  # once more, on the primary
        _on_replica.reset(token)
        _count("replica")
        return result

    return run


def replica_ok(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator: a selector whose reads tolerate running on the replica (see :func:`reading`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return reading(lambda: fn(*args, **kwargs))()

    return wrapper


def check() -> dict[str, Any]:
    """For /readyz: "ok" (caught up), "behind", "down" (or skipped after a failure), with this process's counts."""
    if time.monotonic() < _down_until:
        status = "down"
    else:
        try:
            status = "ok" if caught_up() else "behind"
        except DatabaseError as exc:
            status = "down"
            with contextlib.suppress(Exception):
                connections[ALIAS].close()
            log.info("replica check failed: %s", exc)
    return {"status": status, "reads": dict(counts)}
