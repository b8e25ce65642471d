"""Celery tasks (thin: they call services)."""

from __future__ import annotations

from celery import shared_task

from bazaar.rentals import services


@shared_task(name="rentals.send_reminders")
def send_reminders() -> dict[str, int]:
    """Periodic (beat, see apps.py): e-mail due-tomorrow and overdue reminders, once per rental and day; lapse
    the holds whose put-aside copy was not collected in time (the next patron in the queue gets it)."""
    return {**services.reminders_send(), "holds_lapsed": services.holds_expire()}


@shared_task(name="rentals.export_rentals")
def export_rentals(job_id: int) -> int:
    """Write the CSV of an export job; returns the number of rows."""
    return services.export_run(job_id=job_id).done


@shared_task(name="rentals.hold_pickup_notice")
def hold_pickup_notice(hold_id: int) -> bool:
    """E-mail a patron that the copy they held is put aside for them (enqueued by hold_put_aside)."""
    return services.hold_notice_send(hold_id=hold_id)


@shared_task(name="rentals.reap_exports")
def reap_exports() -> dict[str, int]:
    """Periodic: dead export runs failed, expired export files deleted (see exports_reap)."""
    return services.exports_reap()
