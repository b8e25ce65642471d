"""Celery tasks (thin): the vendor's new-order e-mail, sent after the order commits."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from bazaar.storefront import links
from bazaar.storefront.models import Order


@shared_task(
    name="storefront.send_order_email", bind=True, max_retries=5, default_retry_delay=30, acks_late=True
)
def send_order_email(self: object, order_id: int) -> str:
    """E-mail the shop's contact address about a new order. Retried on SMTP errors; a missing order is a no-op."""
    order = (
        Order.objects.select_related("shop", "shop__owner")
        .prefetch_related("items__product")
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        return "missing"
    to = order.shop.contact_email or order.shop.owner.email
    if not to:
        return "no-recipient"
    items = list(order.items.all())
    context = {
        "order": order,
        "items": items,
        # Every link absolute (SITE_URL): a relative path means nothing in a mail client.
        "lines": [
            {
                "item": i,
                "thumb": links.absolute(links.media_url(i.product.thumb_small))
                if i.product.thumb_small
                else "",
            }
            for i in items
        ],
        "manage_url": links.absolute(f"/storefront/orders/{order.pk}/"),
        "status_url": links.absolute(f"/s/{order.shop.slug}/orders/{order.number}/"),
    }
    try:
        send_mail(
            f"New order {order.number} at {order.shop.name}",
            render_to_string("storefront/email/new_order.txt", context),
            settings.DEFAULT_FROM_EMAIL,
            [to],
            html_message=render_to_string("storefront/email/new_order.html", context),
        )
    except OSError as exc:
        raise self.retry(exc=exc)  # type: ignore[attr-defined]
    return "sent"
