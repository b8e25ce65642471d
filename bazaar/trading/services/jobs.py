"""Background imports: an upload too large to answer inline is saved under TRADING_IMPORT_DIR and processed by a
Celery task, which reports progress on the ImportJob row."""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any

from django.db import connection, connections, transaction
from django.utils import timezone

from bazaar.core.errors import DomainError, PayloadTooLarge
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
    and an upsert by id, so running it again is safe. The stored file is removed afterwards."""
    writer = _ProgressWriter(job_id)
    runnable = [ImportJob.State.QUEUED]
    if writer.conn is not None:
        runnable.append(ImportJob.State.RUNNING)
    claimed = writer.lock() and ImportJob.objects.filter(pk=job_id, state__in=runnable).update(
        state=ImportJob.State.RUNNING
    )
    job = ImportJob.objects.get(pk=job_id)
    if not claimed:
        writer.close()
        return job
    try:
        with open(job.path, "rb") as source:
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
    job.finished_at = timezone.now()
    job.save()
    if (job.errors or {}).get("code") != "import_stale":  # kept for a fresh preview of the same file
        with contextlib.suppress(OSError):
            os.remove(job.path)
    return job
