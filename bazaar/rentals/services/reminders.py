"""Reminder e-mails for rentals due tomorrow or overdue, at most once per rental, kind and day."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from bazaar.rentals.models import ReminderKind, ReminderSent, Rental

log = logging.getLogger("bazaar.rentals")


def _message(rental: Rental, kind: str) -> tuple[str, str]:
    due = timezone.localtime(rental.due_at).strftime("%Y-%m-%d %H:%M")
    if kind == ReminderKind.DUE_TOMORROW:
        subject = f"Reminder: '{rental.title.title}' is due tomorrow"
        body = f"Dear {rental.customer.name},\n\nplease return '{rental.title.title}' (copy {rental.copy.barcode}) by {due}."
    else:
        subject = f"Overdue: '{rental.title.title}'"
        body = (
            f"Dear {rental.customer.name},\n\n'{rental.title.title}' (copy {rental.copy.barcode}) was due on {due}. "
            "Please return it; a late fine applies after the grace period."
        )
    return subject, body + f"\n\nRental #{rental.pk}\n"


def reminders_send(*, now: datetime | None = None) -> dict[str, int]:
    """E-mail every customer with an open rental due tomorrow (local date) or overdue; record each send.

    Idempotent: a ``ReminderSent`` row (unique rental, kind, day) is inserted in the same transaction as the
    send, so a second run the same day (or a concurrent one: the insert waits on the unique index, then fails)
    sends nothing again. A failed send rolls its row back so the next run retries it. Customers without an
    e-mail address are skipped. Returns counts: sent, already, skipped, failed.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    tz = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(today + timedelta(days=1), time.min), tz)
    end = start + timedelta(days=1)
    base = (
        Rental.objects.filter(returned_at__isnull=True)
        .select_related("customer", "title", "copy")
        .order_by("pk")
    )
    batches = [
        (ReminderKind.DUE_TOMORROW, base.filter(due_at__gte=start, due_at__lt=end)),
        (ReminderKind.OVERDUE, base.filter(due_at__lt=now)),
    ]
    counts = {"sent": 0, "already": 0, "skipped": 0, "failed": 0}
    for kind, qs in batches:
        for rental in qs.iterator(chunk_size=500):
            email = rental.customer.email
            if not email:
                counts["skipped"] += 1
                continue
            if ReminderSent.objects.filter(rental=rental, kind=kind, day=today).exists():
                counts["already"] += 1
                continue
            subject, body = _message(rental, kind)
            try:
                with transaction.atomic():
                    ReminderSent.objects.create(rental=rental, kind=kind, day=today, email=email, sent_at=now)
                    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email])
            except IntegrityError:
                counts["already"] += 1
            except Exception:  # the SMTP server failed: the row is rolled back, the next run retries
                log.exception("reminder for rental %s failed", rental.pk)
                counts["failed"] += 1
            else:
                counts["sent"] += 1
    return counts
