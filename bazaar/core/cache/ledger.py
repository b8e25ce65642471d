"""The cache ledger in the database (bazaar.core.models.CacheLedger): lost invalidations and the cache server whose
contents were last settled, kept where they survive every process and every cache restart.

A process may serve from a cache server only after checking, on each new connection (it is the only way to reach
a restarted, restored or failed-over Redis), that the ledger has nothing unsettled for it; otherwise it first
bumps the epoch (every entry and raw flag becomes unreadable at once) and records the settlement. Writers that
could not deliver an invalidation record it here before their answer goes out.
"""

from __future__ import annotations

import logging

from django.db import connection
from django.utils import timezone

log = logging.getLogger("bazaar.cache")

_TABLE = "core_cacheledger"


def record_lost(namespace: str) -> bool:
    """Durably count one undelivered invalidation for ``namespace``. Returns False if the database refused too."""
    try:
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {_TABLE} (namespace, server_run, lost, settled, updated_at) "  # noqa: S608 (constant)
                f"VALUES (%s, '', 1, 0, %s) ON CONFLICT (namespace) DO UPDATE SET lost = {_TABLE}.lost + 1, "
                "updated_at = EXCLUDED.updated_at",
                [namespace, timezone.now()],
            )
    except Exception:
        log.exception("could not record a lost cache invalidation for %s in the database", namespace)
        return False
    return True


def state(namespace: str) -> tuple[str, int, int] | None:
    """``(server_run, lost, settled)`` of ``namespace``, or None when it has no row yet."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT server_run, lost, settled FROM {_TABLE} WHERE namespace = %s",  # noqa: S608 (constant)
            [namespace],
        )
        row = cur.fetchone()
    return (str(row[0]), int(row[1]), int(row[2])) if row else None


def needs_settling(found: tuple[str, int, int] | None, server_run: str) -> bool:
    """Whether a cache server with run id ``server_run`` must get an epoch bump before anyone serves from it."""
    if found is None:
        return True  # never settled: its contents may predate anything
    run, lost, settled = found
    return run != server_run or lost > settled


def mark_settled(namespace: str, server_run: str, lost: int) -> None:
    """After an epoch bump on ``server_run``: the lost invalidations up to ``lost`` are settled."""
    now = timezone.now()
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {_TABLE} (namespace, server_run, lost, settled, updated_at) "  # noqa: S608 (constant)
            f"VALUES (%s, %s, %s, %s, %s) ON CONFLICT (namespace) DO UPDATE SET server_run = EXCLUDED.server_run, "
            f"settled = CASE WHEN {_TABLE}.settled < EXCLUDED.settled THEN EXCLUDED.settled ELSE {_TABLE}.settled END, "
            "updated_at = EXCLUDED.updated_at",
            [namespace, server_run, lost, lost, now],
        )
