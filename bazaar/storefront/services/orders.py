"""Order writes: anonymous, idempotent placement that never oversells; the vendor's status changes."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from bazaar.accounts.models import User
from bazaar.core import sql
from bazaar.core.errors import Conflict, NotFound, ValidationFailed
from bazaar.storefront import conf
from bazaar.storefront.cache import invalidate_store
from bazaar.storefront.models import (
    PAYMENT_TRANSITIONS,
    TRANSITIONS,
    Order,
    OrderEvent,
    OrderIdempotencyKey,
    OrderItem,
    OrderStatus,
    PaymentStatus,
    Product,
    Shop,
)
from bazaar.storefront.services.products import owner_shop
from bazaar.storefront.stock import page_changes

log = logging.getLogger("bazaar.storefront")

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class OrderLine:
    product_id: int
    quantity: int
    #: The price the customer saw. When given and different from the current price, the order is refused.
    unit_price: Decimal | None = None


@dataclass(frozen=True)
class Placed:
    order: Order
    created: bool
    items: list[OrderItem]


def _order_number() -> str:
    return "BZ-" + "".join(secrets.choice(_ALPHABET) for _ in range(10))


def _normalise(lines: Sequence[OrderLine]) -> list[OrderLine]:
    if not lines:
        raise ValidationFailed("Choose at least one product.", code="empty_order")
    if len(lines) > conf.max_order_lines():
        raise ValidationFailed("Too many lines in one order.", code="too_many_lines")
    merged: dict[int, OrderLine] = {}
    for line in lines:
        if line.quantity < 1 or line.quantity > conf.max_quantity():
            raise ValidationFailed(
                f"Quantities must be between 1 and {conf.max_quantity()}.",
                code="invalid_quantity",
                details={"product_id": line.product_id},
            )
        seen = merged.get(line.product_id)
        if seen is not None:
            if seen.unit_price != line.unit_price:
                raise ValidationFailed("One product, two prices.", code="invalid_line")
            line = OrderLine(line.product_id, seen.quantity + line.quantity, line.unit_price)
        merged[line.product_id] = line
    return [merged[k] for k in sorted(merged)]


def _clean_customer(name: str, phone: str, address: str) -> tuple[str, str, str]:
    name, phone, address = (name or "").strip(), (phone or "").strip(), (address or "").strip()
    errors = {}
    if not name or len(name) > 120:
        errors["customer_name"] = "A name of 1–120 characters is required."
    digits = [c for c in phone if c.isdigit()]
    if len(digits) < 6 or len(phone) > 30 or any(not (c.isdigit() or c in "+-() ") for c in phone):
        errors["phone"] = "A phone number (digits, spaces, + - ( )) is required."
    if not address or len(address) > 1000:
        errors["address"] = "A delivery address is required."
    if errors:
        raise ValidationFailed("Please check your details.", code="invalid_customer", details=errors)
    return name, phone, address


def request_hash(lines: Sequence[OrderLine], name: str, phone: str, address: str) -> str:
    """A fingerprint of what was asked, to tell a retry from a different order under the same key."""
    body = {
        "lines": [
            [ln.product_id, ln.quantity, None if ln.unit_price is None else str(ln.unit_price)]
            for ln in lines
        ],
        "customer": [name, phone, address],
    }
    return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest()


def _replay(shop: Shop, key: str, digest: str) -> Placed | None:
    row = (
        OrderIdempotencyKey.objects.select_related("order")
        .prefetch_related("order__items")
        .filter(shop=shop, key=key)
        .first()
    )
    if row is None or row.order is None:
        return None
    if row.request_hash != digest:
        raise ValidationFailed(
            "This idempotency key was already used for a different order.", code="idempotency_key_reused"
        )
    return Placed(order=row.order, created=False, items=list(row.order.items.all()))


def order_place(
    *,
    slug: str,
    lines: Sequence[OrderLine],
    customer_name: str,
    phone: str,
    address: str,
    idempotency_key: str = "",
) -> Placed:
    """Place an anonymous order at the shop ``slug``: price and stock re-checked, stock decremented atomically.

    Each line's stock is taken by a conditional ``UPDATE ... SET stock = stock - n WHERE stock >= n AND price =
    <price read> AND available`` in primary-key order (two orders never deadlock), after the order rows are
    written, so a hot product's row lock is held only until the commit (see ``_place``); the database refuses
    stock < 0. A key seen before with the same request returns the first order (``created=False``); with a
    different request it is ValidationFailed ``idempotency_key_reused`` (422); the unique (shop, key) index
    settles two concurrent first attempts. Raises NotFound ``shop_not_found``, ValidationFailed (``empty_order``,
    ``invalid_quantity``, ``invalid_customer``, ``unknown_product``), Conflict ``out_of_stock``,
    ``product_unavailable`` or ``price_changed`` (409) — and writes nothing then. After commit the store page is
    invalidated if a line's stock now reads differently there (``stock.page_changes``: the UPDATE returns the new
    stock, so the decision uses the row as locked, not the snapshot) and the vendor's e-mail task is enqueued.
    """
    norm = _normalise(lines)
    name, phone, address = _clean_customer(customer_name, phone, address)
    key = (idempotency_key or "").strip()
    if len(key) > 80:
        raise ValidationFailed(
            "The idempotency key is at most 80 characters.", code="invalid_idempotency_key"
        )
    digest = request_hash(norm, name, phone, address)
    shop, snapshot, replay_hash = _read(slug, [ln.product_id for ln in norm], key)
    if replay_hash is not None:
        replay = _replay(shop, key, digest)
        if replay is not None:
            return replay
    try:
        with transaction.atomic():
            order, items, changes_page = _place(shop, snapshot, norm, name, phone, address, key, digest)
            if changes_page:  # the new stock reads differently on the store page (storefront.stock)
                invalidate_store(shop.slug)
            _enqueue_email(order.pk)
    except IntegrityError:
        # Another request with the same key committed first (unique index): answer as a retry of it.
        replay = _replay(shop, key, digest) if key else None
        if replay is None:
            raise
        return replay
    return Placed(order=order, created=True, items=items)


def _check(p: Product | None, ln: OrderLine) -> None:
    """Raise the customer-facing reason why ``ln`` cannot be ordered from ``p`` (as last read), if any."""
    if p is None or p.is_archived or not p.is_listed:
        raise ValidationFailed(
            "That product is not sold here.", code="unknown_product", details={"product_id": ln.product_id}
        )
    if not p.is_available:
        raise Conflict(
            f"“{p.name}” is currently unavailable.", code="product_unavailable", details={"product_id": p.pk}
        )
    if p.stock < ln.quantity:
        msg = f"“{p.name}” is out of stock." if p.stock == 0 else f"Only {p.stock} of “{p.name}” left."
        raise Conflict(msg, code="out_of_stock", details={"product_id": p.pk, "available": p.stock})
    if ln.unit_price is not None and Decimal(ln.unit_price) != p.price:
        raise Conflict(
            f"The price of “{p.name}” changed to {p.price}; please review your order.",
            code="price_changed",
            details={"product_id": p.pk, "price": str(p.price)},
        )


@functools.cache
def _read_sql(n_ids: int, with_key: bool) -> str:
    p, sh, k = sql.table(Product), sql.table(Shop), sql.table(OrderIdempotencyKey)
    replay = (
        f"(SELECT k.request_hash FROM {k} k WHERE k.shop_id = s.id AND k.key = %s)"  # noqa: S608 (table name)
        if with_key
        else "NULL"
    )
    ids = ", ".join(["%s"] * n_ids)
    columns = "p.id, p.name, p.price, p.stock, p.is_available, p.is_listed, p.is_archived"
    return f"SELECT {columns}, s.id, s.slug, s.name, s.currency, {replay} FROM {p} p JOIN {sh} s ON s.id = p.shop_id WHERE s.slug = %s AND p.id IN ({ids})"  # noqa: S608 (names and placeholders only)


def _read(slug: str, ids: list[int], key: str) -> tuple[Shop, dict[int, Product], str | None]:
    """The shop, the ordered products (unlocked) and the request hash stored under ``key`` if the key was used
    before — in one query on the usual path (products joined to their shop, the key looked up in a subquery,
    statement text built once: this runs on every order); a second query only when none of the products is
    this shop's (to tell 404 from 422). Product instances carry just the columns an order needs."""
    params: list[Any] = [key] if key else []
    params += [slug, *ids]
    with connection.cursor() as cur:
        cur.execute(_read_sql(len(ids), bool(key)), params)
        rows = cur.fetchall()
    if rows:
        first = rows[0]
        shop = sql.instance(Shop, dict(zip(("id", "slug", "name", "currency"), first[7:11], strict=True)))
        snapshot = {
            r[0]: sql.instance(
                Product,
                {
                    "id": r[0],
                    "shop_id": shop.pk,
                    "name": r[1],
                    "price": sql.money(r[2]),
                    "stock": r[3],
                    "is_available": bool(r[4]),
                    "is_listed": bool(r[5]),
                    "is_archived": bool(r[6]),
                },
            )
            for r in rows
        }
        return shop, snapshot, first[11]
    shop_or_none = Shop.objects.filter(slug=slug).first()
    if shop_or_none is None:
        raise NotFound("No such store.", code="shop_not_found")
    used_hash = (
        OrderIdempotencyKey.objects.filter(shop=shop_or_none, key=key)
        .values_list("request_hash", flat=True)
        .first()
        if key
        else None
    )
    return shop_or_none, {}, used_hash


_ORDER_FIELDS = (
    "shop",
    "number",
    "customer_name",
    "phone",
    "address",
    "status",
    "payment_status",
    "total",
    "currency",
    "created_at",
    "updated_at",
)
_ITEM_FIELDS = ("order", "product", "product_name", "unit_price", "quantity", "line_total")
_KEY_FIELDS = ("shop", "key", "request_hash", "order", "created_at")


@functools.cache
def _take_stock_sql() -> str:
    """Take stock only if the product is still what was read: enough stock, same price, orderable."""
    return (
        f"UPDATE {sql.table(Product)} SET stock = stock - %s WHERE id = %s AND stock >= %s AND price = %s"  # noqa: S608
        " AND is_available AND is_listed AND NOT is_archived RETURNING stock"
    )


def _place(
    shop: Shop,
    snapshot: dict[int, Product],
    lines: list[OrderLine],
    name: str,
    phone: str,
    address: str,
    key: str,
    digest: str,
) -> tuple[Order, list[OrderItem], bool]:
    """Inside the caller's transaction. The products were read without a lock (``_read``) and the order, its
    lines and the idempotency key are written first; the stock is taken last by one conditional UPDATE per line (in primary
    key order, so crossing orders never deadlock) that also re-checks price and availability in its WHERE.
    The row lock of a hot product is therefore held only from that UPDATE to the COMMIT, not for the whole
    order. If an UPDATE matches no row, the product changed since it was read: re-read it and raise why; the
    exception rolls the whole order back."""
    for ln in lines:
        _check(snapshot.get(ln.product_id), ln)
    items = [
        OrderItem(
            product=snapshot[ln.product_id],
            product_name=snapshot[ln.product_id].name,
            unit_price=snapshot[ln.product_id].price,
            quantity=ln.quantity,
            line_total=snapshot[ln.product_id].price * ln.quantity,
        )
        for ln in lines
    ]
    now = timezone.now()
    order = Order(
        shop=shop,
        number=_order_number(),
        customer_name=name,
        phone=phone,
        address=address,
        total=sum((i.line_total for i in items), Decimal("0.00")),
        currency=shop.currency,
        created_at=now,
    )
    sql.insert([order], _ORDER_FIELDS)
    for item in items:
        item.order = order
    sql.insert(items, _ITEM_FIELDS)
    if key:
        # Before the stock: a concurrent request with the same key waits here (unique index), not on a product.
        ikey = OrderIdempotencyKey(shop=shop, key=key, request_hash=digest, order=order)
        sql.insert([ikey], _KEY_FIELDS)
    changes_page = False
    with connection.cursor() as cur:
        for ln in lines:  # already in primary-key order (_normalise)
            seen = snapshot[ln.product_id]
            cur.execute(_take_stock_sql(), [ln.quantity, ln.product_id, ln.quantity, seen.price])
            row = cur.fetchone()
            if row is None:
                _check(
                    Product.objects.filter(pk=ln.product_id).first(),
                    OrderLine(ln.product_id, ln.quantity, seen.price),
                )
                raise Conflict("The product changed; please try again.", code="product_changed")
            changes_page = changes_page or page_changes(row[0] + ln.quantity, row[0])
    return order, items, changes_page


def _enqueue_email(order_id: int) -> None:
    from bazaar.storefront.tasks import send_order_email

    def enqueue() -> None:
        # The order is committed: a broker hiccup must not turn the customer's success into a 500.
        try:
            send_order_email.delay(order_id)
        except Exception:
            log.exception("could not enqueue the new-order e-mail for order %s", order_id)

    transaction.on_commit(enqueue)


def order_set_status(*, owner: User, order_id: int, status: str) -> Order:
    """Move one of the owner's orders along the state machine (``models.TRANSITIONS``).

    Locks the order, then (when cancelling) its products in primary-key order and returns their stock.
    Raises NotFound ``order_not_found`` (also for another shop's order), ValidationFailed ``invalid_status``,
    Conflict ``illegal_transition`` (409). Invalidates the store page when stock came back.
    """
    if status not in OrderStatus.values:
        raise ValidationFailed(
            "Unknown status.", code="invalid_status", details={"allowed": OrderStatus.values}
        )
    with transaction.atomic():
        shop = owner_shop(owner)
        order = Order.objects.select_for_update().filter(pk=order_id, shop=shop).first()
        if order is None:
            raise NotFound("No such order.", code="order_not_found")
        if status not in TRANSITIONS[order.status]:
            raise Conflict(
                f"An order that is {order.status} cannot become {status}.",
                code="illegal_transition",
                details={"from": order.status, "to": status, "allowed": sorted(TRANSITIONS[order.status])},
            )
        if status == OrderStatus.CANCELLED:
            items = list(order.items.order_by("product_id"))
            list(
                Product.objects.select_for_update()
                .filter(pk__in=[i.product_id for i in items])
                .order_by("pk")
            )
            for item in items:
                Product.objects.filter(pk=item.product_id).update(stock=F("stock") + item.quantity)
        order.status = status
        order.save(update_fields=["status", "updated_at"])
        OrderEvent.objects.create(
            order=order, kind=OrderEvent.Kind.STATUS, value=status, at=timezone.now(), actor=owner.username
        )
    return order


def order_set_payment(*, owner: User, order_id: int, payment_status: str) -> Order:
    """Record a payment change (pending → paid → refunded), independent of fulfilment.

    Locks the order. Raises NotFound ``order_not_found``, ValidationFailed ``invalid_payment_status``,
    Conflict ``illegal_transition``.
    """
    if payment_status not in PaymentStatus.values:
        raise ValidationFailed(
            "Unknown payment status.",
            code="invalid_payment_status",
            details={"allowed": PaymentStatus.values},
        )
    with transaction.atomic():
        shop = owner_shop(owner)
        order = Order.objects.select_for_update().filter(pk=order_id, shop=shop).first()
        if order is None:
            raise NotFound("No such order.", code="order_not_found")
        if payment_status not in PAYMENT_TRANSITIONS[order.payment_status]:
            raise Conflict(
                f"Payment that is {order.payment_status} cannot become {payment_status}.",
                code="illegal_transition",
                details={"from": order.payment_status, "to": payment_status},
            )
        order.payment_status = payment_status
        order.save(update_fields=["payment_status", "updated_at"])
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.PAYMENT,
            value=payment_status,
            at=timezone.now(),
            actor=owner.username,
        )
    return order
