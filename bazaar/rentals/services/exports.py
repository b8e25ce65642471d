"""CSV export of the active (open) rentals, written by a Celery task under MEDIA_ROOT with progress."""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bazaar.accounts.models import User
from bazaar.core import jobs
from bazaar.core.errors import NotFound
from bazaar.rentals import conf
from bazaar.rentals.models import ExportJob, ExportStatus, Rental

HEADER = [
    "rental_id",
    "customer_id",
    "customer_name",
    "customer_email",
    "title_id",
    "title",
    "kind",
    "copy_id",
    "barcode",
    "rented_at",
    "due_at",
    "overdue",
    "renewals",
]
PROGRESS_EVERY = 500


def export_start(*, by: User | None = None) -> ExportJob:
    """Create a pending export job and enqueue its task once the job row is committed."""
    from bazaar.rentals.tasks import export_rentals

    with transaction.atomic():
        job = ExportJob.objects.create(created_by=by)
        transaction.on_commit(lambda: export_rentals.delay(job.pk))
    return job


def export_path(job: ExportJob) -> Path:
    return Path(settings.MEDIA_ROOT) / job.file


def export_run(*, job_id: int, on_progress: Callable[[int, int], None] | None = None) -> ExportJob:
    """Write the CSV for ``job_id``: claims the job (pending → running; a job already done is returned as it
    is, so a redelivered task does nothing), streams open rentals in chunks, saves progress every
    ``PROGRESS_EVERY`` rows, writes to a temporary file and renames it into place, then marks it done.
    Any error marks the job failed with the message. NotFound ``export_not_found``. The lifecycle (claim with
    this worker, heartbeats, done/failed only while the run still owns the job) comes from ``core.jobs``. Locks
    the job row (``select_for_update``) while claiming it.
    """
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            raise NotFound("No such export.", code="export_not_found")
        if job.status == ExportStatus.DONE:
            return job
        now = timezone.now()
        qs = (
            Rental.objects.filter(returned_at__isnull=True)
            .select_related("customer", "title", "copy")
            .order_by("pk")
        )
        rerunnable = [ExportStatus.PENDING, ExportStatus.RUNNING, ExportStatus.FAILED]  # a redelivery reruns
        jobs.job_claim(
            ExportJob,
            pk=job.pk,
            from_states=rerunnable,
            now=now,
            total=qs.count(),
            done=0,
            error="",
            file=f"{conf.export_dir()}/active-rentals-{job.pk}-{secrets.token_hex(6)}.csv",
        )
        job.refresh_from_db()
    target = export_path(job)
    tmp = target.with_suffix(".part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        done = 0
        with tmp.open("w", newline="", encoding="utf-8") as fh, jobs.heartbeat(ExportJob, job.pk):
            writer = csv.writer(fh)
            writer.writerow(HEADER)
            for r in qs.iterator(chunk_size=1000):
                writer.writerow(
                    [
                        r.pk,
                        r.customer_id,
                        r.customer.name,
                        r.customer.email,
                        r.title_id,
                        r.title.title,
                        r.title.kind,
                        r.copy_id,
                        r.copy.barcode,
                        r.rented_at.isoformat(),
                        r.due_at.isoformat(),
                        "yes" if r.due_at < now else "no",
                        r.renewals,
                    ]
                )
                done += 1
                if done % PROGRESS_EVERY == 0:
                    jobs.job_beat(ExportJob, pk=job.pk, done=done)
                    if on_progress:
                        on_progress(done, job.total)
        os.replace(tmp, target)
    except Exception as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        jobs.job_fail(ExportJob, pk=job.pk, error=str(exc)[:2000])
        job.refresh_from_db()
        return job
    jobs.job_finish(ExportJob, pk=job.pk, done=done, total=max(done, job.total))
    if on_progress:
        on_progress(done, max(done, job.total))
    job.refresh_from_db()
    return job


def exports_reap(*, job_id: int | None = None) -> dict[str, int]:
    """Exports never stuck (periodic task, and whenever an export is read): a running export whose run is dead
    (``core.jobs.is_dead``: no heartbeat for JOBS_STALE_SECONDS and its process gone) becomes ``failed`` with the
    reason, and its partial file is deleted; files of finished exports older than JOBS_RETENTION_SECONDS are
    deleted (the download then answers 409 ``export_missing``). One conditional UPDATE per job (still running,
    same heartbeat: ``core.jobs.jobs_reap``), so a run that comes back meanwhile is never overwritten. Returns
    what it did."""
    now = timezone.now()
    reaped = jobs.jobs_reap(ExportJob, pk=job_id, now=now, failure=_lost)
    for job in reaped:
        if job.file:
            jobs.remove_file(export_path(job).with_suffix(".part"))
    deleted = 0
    if job_id is None:
        for job in jobs.jobs_expired(ExportJob, now=now).exclude(file=""):
            deleted += jobs.remove_file(export_path(job))
    return {"failed": len(reaped), "files_deleted": deleted}


def _lost(job: ExportJob) -> dict[str, str]:
    """What a dead export is failed with (the ``error`` the API shows)."""
    return {
        "error": f"The process writing this export ({job.worker or 'unknown'}) stopped; start a new export."
    }


def export_status(*, job_id: int) -> ExportJob:
    """The export as it stands, after reaping it if its run is dead. NotFound ``export_not_found``."""
    exports_reap(job_id=job_id)
    job = ExportJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such export.", code="export_not_found")
    return job
