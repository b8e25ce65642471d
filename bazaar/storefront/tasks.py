"""Celery tasks (thin): the vendor's new-order e-mail, sent after the order commits."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from bazaar.storefront import links
from bazaar.storefront.selectors import order_for_mail


@shared_task(
    name="storefront.send_order_email", bind=True, max_retries=5, default_retry_delay=30, acks_late=True
)
def send_order_email(self: object, order_id: int) -> str:
    """E-mail the shop's contact address about a new order. Retried on SMTP errors; a missing order is a no-op."""
    mail = order_for_mail(order_id)
    if mail is None:
        return "missing"
    if not mail.recipient:
        return "no-recipient"
    order = mail.order
    context = {
        "order": order,
        "items": mail.lines,
        # Every link absolute (SITE_URL): a relative path means nothing in a mail client.
        "lines": [
            {
                "item": line,
                "thumb": links.absolute(links.media_url(line.thumb_small)) if line.thumb_small else "",
            }
            for line in mail.lines
        ],
        "manage_url": links.absolute(f"/storefront/orders/{order.pk}/"),
        "status_url": links.absolute(f"/s/{order.shop.slug}/orders/{order.number}/"),
    }
    try:
        send_mail(
            f"New order {order.number} at {order.shop.name}",
            render_to_string("storefront/email/new_order.txt", context),
            settings.DEFAULT_FROM_EMAIL,
            [mail.recipient],
            html_message=render_to_string("storefront/email/new_order.html", context),
        )
    except OSError as exc:
        raise self.retry(exc=exc)  # type: ignore[attr-defined]
    return "sent"
