"""Celery tasks (thin): the vendor's new-order e-mail, sent after the order commits."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from bazaar.storefront.models import Order


@shared_task(bind=True, max_retries=5, default_retry_delay=30, acks_late=True)
def send_order_email(self: object, order_id: int) -> str:
    """E-mail the shop's contact address about a new order. Retried on SMTP errors; a missing order is a no-op."""
    order = (
        Order.objects.select_related("shop", "shop__owner")
        .prefetch_related("items")
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        return "missing"
    to = order.shop.contact_email or order.shop.owner.email
    if not to:
        return "no-recipient"
    body = render_to_string(
        "storefront/email/new_order.txt", {"order": order, "items": list(order.items.all())}
    )
    try:
        send_mail(
            f"New order {order.number} at {order.shop.name}",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [to],
        )
    except OSError as exc:
        raise self.retry(exc=exc)  # type: ignore[attr-defined]
    return "sent"
