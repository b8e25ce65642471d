"""Celery tasks (thin: they call services)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="trading.run_import_job")
def run_import_job(job_id: int) -> str:
    from bazaar.trading.services.jobs import import_job_run

    return str(import_job_run(job_id=job_id).state)


@shared_task(name="trading.expire_offers")
def expire_offers() -> int:
    from bazaar.trading.services.trades import offers_expire

    return offers_expire()


@shared_task(name="trading.reap_import_jobs")
def reap_import_jobs() -> dict[str, int]:
    """Periodic: dead import runs failed, their uploads and expired ones deleted (see import_jobs_reap)."""
    from bazaar.trading.services.jobs import import_jobs_reap

    return import_jobs_reap()
