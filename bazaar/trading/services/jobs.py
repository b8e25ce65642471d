"""Background imports: an upload too large to answer inline is saved under TRADING_IMPORT_DIR and processed by a
Celery task, which reports progress on the ImportJob row."""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any

from django.db import connection, connections, transaction
from django.utils import timezone

from bazaar.core import jobs
from bazaar.core.errors import DomainError, NotFound, PayloadTooLarge
from bazaar.trading import conf
from bazaar.trading.models import ImportJob
from bazaar.trading.services.import_fingerprint import expect
from bazaar.trading.services.imports import Progress, import_csv


def import_job_submit(*, upload: Any, kind: str, dry_run: bool, user: Any = None) -> ImportJob:
    """Store the upload (streamed in chunks) where workers can read it, create a queued ImportJob and enqueue the
    task after commit. PayloadTooLarge ``import_too_large`` over the limit (nothing stored)."""
    size = import_upload_size(upload)
    path = import_file_store(upload)
    return import_job_enqueue(path=path, size=size, kind=kind, dry_run=dry_run, user=user)


def import_upload_size(upload: Any) -> int:
    """The upload's declared size; PayloadTooLarge ``import_too_large`` over TRADING_IMPORT_MAX_BYTES."""
    limit = conf.import_max_bytes()
    size = int(getattr(upload, "size", 0) or 0)
    if size > limit:
        raise PayloadTooLarge(
            f"The file is larger than the import limit of {limit} bytes.",
            code="import_too_large",
            details={"limit": limit, "size": size},
        )
    return size


def import_file_store(upload: Any) -> str:
    """Stream an upload (``.chunks()``) into a new file under TRADING_IMPORT_DIR; return its path."""
    directory = conf.import_dir()
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{uuid.uuid4().hex}.csv")
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return path


def import_job_enqueue(
    *, path: str, size: int, kind: str, dry_run: bool, user: Any = None, fingerprint: str = ""
) -> ImportJob:
    """A queued ImportJob for a stored file; the task is enqueued after commit. With a ``fingerprint`` (a confirmed
    preview) the job refuses with ``import_stale`` if the rows the file touches changed since."""
    from bazaar.trading.tasks import run_import_job

    with transaction.atomic():
        job = ImportJob.objects.create(
            kind=kind,
            dry_run=dry_run,
            path=path,
            size=size,
            fingerprint=fingerprint,
            created_by=user if user is not None else None,
        )
        transaction.on_commit(lambda: run_import_job.delay(job.pk))
    return job


#: Namespace of the session advisory lock that marks a job as being run (PostgreSQL).
_RUN_LOCK = 0x7472_0000_0000


class _ProgressWriter:
    """Writes progress to the job row from a second connection, so readers see it while the import's own
    transaction is still open. On SQLite (one writer at a time) progress shows at the end only.

    On PostgreSQL the same connection holds a session advisory lock on the job for the whole run: a worker that
    dies mid-import loses its connection and with it the lock, which is how a redelivered task tells a dead
    run (take over) from a live one (leave alone)."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.conn: Any = None
        if connection.vendor == "postgresql":
            self.conn = connections.create_connection("default")

    def lock(self) -> bool:
        """Take the job's run lock (always True on SQLite, where a job is only ever claimed from queued)."""
        if self.conn is None:
            return True
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", [_RUN_LOCK + self.job_id])
            return bool(cur.fetchone()[0])

    def __call__(self, p: Progress) -> None:
        if self.conn is None:
            return
        with self.conn.cursor() as cur:
            cur.execute(
                "UPDATE trading_importjob SET rows_validated = %s, rows_written = %s WHERE id = %s",
                [p.rows, p.rows_written, self.job_id],
            )

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def import_job_run(*, job_id: int) -> ImportJob:
    """Run a queued job (the Celery task calls this). A finished job, or one another live worker is running, is
    left alone (a duplicate delivery does not import twice). On PostgreSQL a job left "running" by a worker that
    died mid-import (its task is redelivered: acks_late, reject_on_worker_lost) is run again: the run lock (see
    ``_ProgressWriter``) is free then, the dead run's transaction has rolled back, and the import is all-or-nothing
    and an upsert by id, so running it again is safe. The stored file is removed afterwards. Claiming, heartbeats
    and the outcome (recorded only while the run still owns the job) come from ``core.jobs``."""
    writer = _ProgressWriter(job_id)
    runnable = [ImportJob.State.QUEUED]
    if writer.conn is not None:
        runnable.append(ImportJob.State.RUNNING)
    claimed = writer.lock() and jobs.job_claim(ImportJob, pk=job_id, from_states=runnable)
    job = ImportJob.objects.get(pk=job_id)
    if not claimed:
        writer.close()
        return job
    try:
        with open(job.path, "rb") as source, jobs.heartbeat(ImportJob, job_id):
            result = import_csv(
                source=source,
                kind=job.kind,
                dry_run=job.dry_run,
                progress=writer,
                inspect=expect(job.fingerprint) if job.fingerprint else None,
            )
        job.state = ImportJob.State.SUCCEEDED
        job.result = result.as_dict()
        job.rows_validated = result.rows
        job.rows_written = 0 if job.dry_run else result.rows
    except DomainError as exc:
        job.state = ImportJob.State.FAILED
        job.errors = exc.as_dict()
    except FileNotFoundError:
        job.state = ImportJob.State.FAILED
        job.errors = {"code": "file_missing", "message": "The uploaded file is gone.", "details": None}
    finally:
        writer.close()
    # Only a run that still owns the job records its outcome: one the reaper already gave up on stays failed.
    end = jobs.job_fail if job.state == ImportJob.State.FAILED else jobs.job_finish
    end(
        ImportJob,
        pk=job_id,
        result=job.result,
        errors=job.errors,
        rows_validated=job.rows_validated,
        rows_written=job.rows_written,
    )
    if (job.errors or {}).get("code") != "import_stale":  # kept for a fresh preview of the same file
        jobs.remove_file(job.path)
    job.refresh_from_db()
    return job


def _run_lock_held(job_id: int) -> bool:
    """Whether a live run holds the job's run lock (PostgreSQL; False elsewhere)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [_RUN_LOCK + job_id])
        if not cur.fetchone()[0]:
            return True
        cur.execute("SELECT pg_advisory_unlock(%s)", [_RUN_LOCK + job_id])
    return False


def import_jobs_reap(*, job_id: int | None = None) -> dict[str, int]:
    """Jobs never stuck (periodic task, and whenever a job is read): a running job whose run is dead (see
    ``core.jobs.is_dead``: no heartbeat for JOBS_STALE_SECONDS, its process gone, its run lock free) becomes
    ``failed`` with code ``worker_lost`` and its upload is deleted — the import is all-or-nothing, so nothing of it
    was written. Uploads of finished jobs older than JOBS_RETENTION_SECONDS, and files in the import folder that
    no waiting job names, are deleted too. Returns what it did. Each job is failed with one conditional UPDATE
    (still running, same heartbeat: ``core.jobs.jobs_reap``), so a run that comes back to life meanwhile is never
    overwritten."""
    now = timezone.now()
    reaped = jobs.jobs_reap(
        ImportJob, pk=job_id, now=now, lock_held=lambda job: _run_lock_held(job.pk), failure=_worker_lost
    )
    for job in reaped:
        jobs.remove_file(job.path)
    if job_id is not None:
        return {"failed": len(reaped), "files_deleted": 0}
    deleted = 0
    for job in jobs.jobs_expired(ImportJob, now=now).exclude(path=""):
        deleted += jobs.remove_file(job.path)
        ImportJob.objects.filter(pk=job.pk).update(path="")
    waiting = set(
        ImportJob.objects.exclude(state__in=ImportJob.lifecycle.finished).values_list("path", flat=True)
    )
    directory = conf.import_dir()
    cutoff = jobs.stale_before(now).timestamp()
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.is_file() and entry.path not in waiting and entry.stat().st_mtime < cutoff:
                deleted += jobs.remove_file(entry.path)
    return {"failed": len(reaped), "files_deleted": deleted}


def _worker_lost(job: ImportJob) -> dict[str, Any]:
    """What a dead import is failed with: the coded error the API shows (``worker_lost``)."""
    lost = {
        "code": "worker_lost",
        "message": (
            f"The process running this import ({job.worker or 'unknown'}) stopped; nothing was imported. "
            "Upload the file again."
        ),
        "details": {"last_heartbeat": job.heartbeat_at.isoformat() if job.heartbeat_at else None},
    }
    return {"errors": lost}


def import_job_status(*, job_id: int) -> ImportJob:
    """The job as it stands, after reaping it if its run is dead (the check behind GET /import/jobs/{id})."""
    import_jobs_reap(job_id=job_id)
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such import job.", code="job_not_found")
    return job
