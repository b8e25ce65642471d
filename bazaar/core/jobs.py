"""Background jobs never stuck: who runs a job, a heartbeat while it runs, and how a dead run is recognised.

A job row that says "running" may outlive the process running it (a worker killed, a web process restarted in the
default no-broker mode, a machine lost). Each run records its ``worker`` (host:pid) and refreshes ``heartbeat_at``
every JOBS_HEARTBEAT_SECONDS from a thread of its own (PostgreSQL; on SQLite the import's write transaction
holds the only write lock, so there the heartbeat is the claim time and the process check decides). A run is
dead when its heartbeat is older than JOBS_STALE_SECONDS *and* nothing shows it alive: its process, when it ran
on this host, is gone, and (for imports on PostgreSQL) nobody holds its run lock. The apps' reapers (periodic
tasks, also run when a job is read) then mark it failed with the reason and delete its files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone


def worker_id() -> str:
    """This process, as recorded on the job it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_alive(worker: str) -> bool | None:
    """True/False when ``worker`` ran on this host (its pid checked), None when it ran elsewhere."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    return True


def stale_before(now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) - dt.timedelta(seconds=settings.JOBS_STALE_SECONDS)


def is_dead(job: Any, *, lock_held: Callable[[], bool] | None = None, now: dt.datetime | None = None) -> bool:
    """Whether a "running" ``job`` (fields ``worker``, ``heartbeat_at``) has no live run behind it."""
    if job.heartbeat_at is not None and job.heartbeat_at > stale_before(now):
        return False
    if _process_alive(job.worker or "") is True:
        return False
    return not (lock_held is not None and lock_held())


@contextlib.contextmanager
def heartbeat(model: type[Any], pk: int) -> Iterator[None]:
    """Refresh ``heartbeat_at`` of one job every JOBS_HEARTBEAT_SECONDS while the block runs (PostgreSQL: from a
    thread with its own connection, so it shows while the job's own transaction is still open)."""
    if connection.vendor != "postgresql":
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        from django.db import connection as own  # this thread's connection

        try:
            while not stop.wait(settings.JOBS_HEARTBEAT_SECONDS):
                model.objects.filter(pk=pk).update(heartbeat_at=timezone.now())
        finally:
            own.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{model.__name__}-{pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def remove_file(path: str | os.PathLike[str]) -> bool:
    """Delete a job's file; True when something was deleted."""
    try:
        os.remove(path)
    except OSError:
        return False
    return True
