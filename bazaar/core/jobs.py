"""Background jobs never stuck: who runs a job, a heartbeat while it runs, and how a dead run is recognised.

A job row that says "running" may outlive the process running it (a worker killed, a web process restarted in the
default no-broker mode, a machine lost). Each run records its ``worker`` (host:pid) and refreshes ``heartbeat_at``
every JOBS_HEARTBEAT_SECONDS from a thread of its own (PostgreSQL; on SQLite the import's write transaction
holds the only write lock, so there the heartbeat is the claim time and the process check decides). A run is
dead when its heartbeat is older than JOBS_STALE_SECONDS *and* nothing shows it alive: its process, when it ran
on this host, is gone, and (for imports on PostgreSQL) nobody holds its run lock. The apps' reapers (periodic
tasks, also run when a job is read) then mark it failed with the reason and delete its files.

The lifecycle exists once, here, for every model derived from ``bazaar.core.models.Job`` (rentals ``ExportJob``,
trading ``ImportJob``): ``job_claim`` (waiting → running on this worker), ``job_beat`` (heartbeat and progress),
``job_finish`` / ``job_fail`` (running → succeeded / failed), ``is_dead`` and ``jobs_reap`` (dead runs failed),
``jobs_expired`` (finished jobs past JOBS_RETENTION_SECONDS). Each transition is one conditional UPDATE on the
job's row, so two processes never both win it; the state values are the app's own (``Job.lifecycle``). What a
job does, and which files it owns, stays in its app.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import socket
import threading
from collections.abc import Callable, Collection, Iterator
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from bazaar.core.models import Job

J = TypeVar("J", bound=Job)


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
    """A heartbeat older than this is stale (JOBS_STALE_SECONDS before ``now``)."""
    return (now or timezone.now()) - dt.timedelta(seconds=settings.JOBS_STALE_SECONDS)


def is_dead(job: Job, *, lock_held: Callable[[], bool] | None = None, now: dt.datetime | None = None) -> bool:
    """Whether a "running" ``job`` has no live run behind it: its heartbeat is stale (not after
    ``stale_before(now)``), its process is not known to be alive (checked only when it ran on this host), and
    ``lock_held`` (the app's own sign of life, e.g. a PostgreSQL advisory lock) says no. Reads only."""
    if job.heartbeat_at is not None and job.heartbeat_at > stale_before(now):
        return False
    if _process_alive(job.worker or "") is True:
        return False
    return not (lock_held is not None and lock_held())


@contextlib.contextmanager
def heartbeat(model: type[Job], pk: int) -> Iterator[None]:
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
                job_beat(model, pk=pk)
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


def _running(model: type[J], pk: int) -> QuerySet[J]:
    lc = model.lifecycle
    return model._default_manager.filter(pk=pk, **{lc.field: lc.running})


def job_claim(
    model: type[J],
    *,
    pk: int,
    from_states: Collection[str] | None = None,
    now: dt.datetime | None = None,
    **fields: Any,
) -> bool:
    """Start a run of job ``pk`` on this process: one conditional UPDATE moves it from ``from_states`` (default:
    the model's waiting state) to running, records ``worker`` (host:pid) and a first heartbeat, and writes the
    caller's ``fields`` (e.g. a total, a cleared error) with it. True when this call claimed it; False when the
    job is missing or in another state (a duplicate delivery, a run already over), and then nothing is written.
    The UPDATE takes the row's write lock, so of two concurrent claims exactly one wins."""
    lc = model.lifecycle
    states = list(from_states) if from_states is not None else [lc.waiting]
    claimed = model._default_manager.filter(pk=pk, **{f"{lc.field}__in": states}).update(
        **{lc.field: lc.running}, worker=worker_id(), heartbeat_at=now or timezone.now(), **fields
    )
    return bool(claimed)


def job_beat(model: type[J], *, pk: int, now: dt.datetime | None = None, **fields: Any) -> bool:
    """A running job's sign of life: refresh ``heartbeat_at`` and write the caller's progress ``fields`` (e.g.
    rows done) in one UPDATE. Only a job still running is touched (one the reaper failed stays as it is); True
    when it was. No lock beyond the row's write lock for the UPDATE."""
    return bool(_running(model, pk).update(heartbeat_at=now or timezone.now(), **fields))


def job_finish(model: type[J], *, pk: int, now: dt.datetime | None = None, **fields: Any) -> bool:
    """End a run successfully: running → succeeded with ``finished_at`` and the caller's result ``fields``, in one
    conditional UPDATE. Only a run that still owns the job records its outcome: a job the reaper already failed
    stays failed (its outcome was announced) and False is returned."""
    lc = model.lifecycle
    return bool(
        _running(model, pk).update(**{lc.field: lc.succeeded}, finished_at=now or timezone.now(), **fields)
    )


def job_fail(model: type[J], *, pk: int, now: dt.datetime | None = None, **fields: Any) -> bool:
    """End a run with an error: running → failed with ``finished_at`` and the caller's error ``fields`` (the
    app's own: a message, a coded error dict), in one conditional UPDATE. Like ``job_finish``, a job that is no
    longer running is left alone and False is returned."""
    lc = model.lifecycle
    return bool(
        _running(model, pk).update(**{lc.field: lc.failed}, finished_at=now or timezone.now(), **fields)
    )


def jobs_reap(
    model: type[J],
    *,
    failure: Callable[[J], dict[str, Any]],
    pk: int | None = None,
    lock_held: Callable[[J], bool] | None = None,
    now: dt.datetime | None = None,
) -> list[J]:
    """Fail the running jobs of ``model`` (or only job ``pk``) whose run is dead (``is_dead``, with the app's
    ``lock_held`` check): each becomes failed with ``finished_at`` and the fields ``failure(job)`` returns (the
    reason, in the app's words). One conditional UPDATE per job (still running, same heartbeat), so a run that
    beat meanwhile is never overwritten. Returns the jobs it failed, as they were read, so the app can delete
    their files. Takes no lock of its own."""
    lc = model.lifecycle
    now = now or timezone.now()
    running = model._default_manager.filter(**{lc.field: lc.running})
    if pk is not None:
        running = running.filter(pk=pk)
    reaped: list[J] = []
    for job in running.exclude(heartbeat_at__gt=stale_before(now)):
        alive = functools.partial(lock_held, job) if lock_held is not None else None
        if not is_dead(job, lock_held=alive, now=now):
            continue
        if (
            _running(model, job.pk)
            .filter(heartbeat_at=job.heartbeat_at)
            .update(**{lc.field: lc.failed}, finished_at=now, **failure(job))
        ):
            reaped.append(job)
    return reaped


def jobs_expired(model: type[J], *, now: dt.datetime | None = None) -> QuerySet[J]:
    """Finished jobs (succeeded or failed) of ``model`` that finished more than JOBS_RETENTION_SECONDS before
    ``now``: their files may go. A read; the app deletes what it owns."""
    lc = model.lifecycle
    expired = (now or timezone.now()) - dt.timedelta(seconds=settings.JOBS_RETENTION_SECONDS)
    return model._default_manager.filter(**{f"{lc.field}__in": lc.finished}, finished_at__lt=expired)
