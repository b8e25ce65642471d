"""Celery tasks (thin: they call services)."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="accounts.prune_login_counters")
def prune_login_counters() -> int:
    """Periodic: delete database login counters whose window has ended."""
    from bazaar.accounts.services import login_counters_prune

    return login_counters_prune()


@shared_task(name="accounts.send_mail", bind=True, max_retries=5, default_retry_delay=30, acks_late=True)
def send_mail_task(self: Any, subject: str, body: str, from_email: str, to: list[str]) -> str:
    """Send one rendered mail (a password reset). Retried on SMTP errors."""
    from django.core.mail import send_mail

    try:
        send_mail(subject, body, from_email, to)
    except OSError as exc:
        raise self.retry(exc=exc)
    return "sent"
