"""Reminders (idempotent per rental and day, recorded), the beat entry, and the export task."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from bazaar.rentals import services, tasks
from bazaar.rentals.models import ExportJob, ReminderSent, Rental

pytestmark = pytest.mark.django_db


def _rent(make_title: Any, customer: Any, *, days_ago: float, loan_days: int) -> Rental:
    rental = services.rental_rent(customer_id=customer.pk, title_id=make_title().pk)
    start = timezone.now() - timedelta(days=days_ago)
    Rental.objects.filter(pk=rental.pk).update(rented_at=start, due_at=start + timedelta(days=loan_days))
    rental.refresh_from_db()
    return rental


def test_reminders_sent_once_per_rental_and_day(make_title: Any, make_customer: Any) -> None:
    a, b, silent = make_customer(), make_customer(), make_customer(email="")
    due_tomorrow = _rent(make_title, a, days_ago=1, loan_days=14)
    tomorrow_noon = timezone.make_aware(
        datetime.combine(timezone.localdate() + timedelta(days=1), time.min)
    ) + timedelta(hours=12)
    Rental.objects.filter(pk=due_tomorrow.pk).update(due_at=tomorrow_noon)
    due_tomorrow.refresh_from_db()
    overdue = _rent(make_title, b, days_ago=20, loan_days=14)
    _rent(make_title, silent, days_ago=20, loan_days=14)
    _rent(make_title, a, days_ago=1, loan_days=14)  # not due yet: no reminder
    counts = tasks.send_reminders()
    assert counts == {"sent": 2, "already": 0, "skipped": 1, "failed": 0, "holds_lapsed": 0}
    assert sorted(m.to[0] for m in mail.outbox) == sorted([a.email, b.email])
    assert {(r.rental_id, r.kind) for r in ReminderSent.objects.all()} == {
        (due_tomorrow.pk, "due_tomorrow"),
        (overdue.pk, "overdue"),
    }
    again = tasks.send_reminders()
    assert again["sent"] == 0
    assert again["already"] == 2
    assert len(mail.outbox) == 2
    tomorrow = services.reminders_send(now=tomorrow_noon + timedelta(hours=1))
    assert tomorrow["sent"] == 2  # both overdue then: one reminder each on the new day
    assert ReminderSent.objects.count() == 4


def test_failed_send_is_not_recorded_and_retried(
    make_title: Any, make_customer: Any, monkeypatch: Any
) -> None:
    _rent(make_title, make_customer(), days_ago=20, loan_days=14)

    def boom(*a: Any, **k: Any) -> None:
        raise OSError("smtp down")

    monkeypatch.setattr("bazaar.rentals.services.reminders.send_mail", boom)
    assert services.reminders_send()["failed"] == 1
    assert ReminderSent.objects.count() == 0
    monkeypatch.undo()
    assert services.reminders_send()["sent"] == 1
    assert ReminderSent.objects.count() == 1


def test_beat_schedule_registered() -> None:
    from bazaar.config.celery import app

    entry = app.conf.beat_schedule["rentals-reminders"]
    assert entry["task"] == "rentals.send_reminders"
    assert entry["schedule"] == 3600.0


def test_export_task_writes_csv_with_progress(
    make_title: Any, make_customer: Any, settings: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    settings.MEDIA_ROOT = tmp_path
    monkeypatch.setattr("bazaar.rentals.services.exports.PROGRESS_EVERY", 2)
    for _ in range(5):
        services.rental_rent(customer_id=make_customer().pk, title_id=make_title().pk)
    job = ExportJob.objects.create()
    seen: list[tuple[int, int]] = []
    services.export_run(job_id=job.pk, on_progress=lambda d, t: seen.append((d, t)))
    job.refresh_from_db()
    assert job.status == "done"
    assert job.done == 5
    assert job.total == 5
    assert job.progress == 1.0
    assert seen == [(2, 5), (4, 5), (5, 5)]
    lines = (tmp_path / job.file).read_text().splitlines()
    assert len(lines) == 6
    assert tasks.export_rentals(job.pk) == 5  # a redelivered task does nothing new


def test_export_failure_is_recorded(settings: Any, tmp_path: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings.MEDIA_ROOT = blocker  # a file, not a folder: writing fails
    job = ExportJob.objects.create()
    services.export_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error
