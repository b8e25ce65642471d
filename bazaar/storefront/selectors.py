"""Storefront reads. Every query an interface needs is here, with its joins decided once."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from bazaar.accounts.models import User
from bazaar.core import sql
from bazaar.core.errors import NotFound, ValidationFailed
from bazaar.storefront import conf
from bazaar.storefront.models import Order, OrderItem, OrderStatus, Product, Shop, ShopSlugHistory


def shop_for_owner(user: User) -> Shop | None:
    """The user's shop, or None (a signed-in user without a shop yet)."""
    if not user.is_authenticated:
        return None
    return Shop.objects.filter(owner=user).first()


class StoreProduct(NamedTuple):
    """A product as the public page shows it (plain values: no model instances on the hot path)."""

    id: int
    name: str
    description: str
    mrp: Decimal
    price: Decimal
    stock: int
    is_available: bool
    thumb_small: str = ""
    thumb: str = ""
    thumb_width: int = 0
    thumb_height: int = 0


class StoreShop(NamedTuple):
    id: int
    name: str
    slug: str
    currency: str
    contact_phone: str


_CENT = Decimal("0.01")


def _money(value: object) -> Decimal:
    # PostgreSQL returns numeric as Decimal; SQLite's NUMERIC affinity can hand back int/float for "90.00".
    return value if isinstance(value, Decimal) else Decimal(str(value)).quantize(_CENT)


def _store_sql() -> str:
    shop, product = sql.table(Shop), sql.table(Product)
    # Table names come from the models (quoted), the slug is a bound parameter.
    return f"SELECT s.id, s.name, s.slug, s.currency, s.contact_phone, p.id, p.name, p.description, p.mrp, p.price, p.stock, p.is_available, p.thumb_small, p.thumb, p.thumb_width, p.thumb_height FROM {shop} s LEFT JOIN {product} p ON p.shop_id = s.id AND p.is_listed AND NOT p.is_archived WHERE s.slug = %s ORDER BY p.name, p.id"  # noqa: S608


def store_by_slug(slug: str) -> tuple[StoreShop, list[StoreProduct]]:
    """The public page's data in exactly one query whatever the product count: the shop LEFT JOINed to its
    listed, non-archived products (a shop without products still comes back, with one all-NULL product part).

    Plain SQL on purpose: this is the uncached page's only query, and building it through the ORM (a
    FilteredRelation join) cost as much CPU as running it. Raises NotFound ``shop_not_found``; the caller
    checks :func:`slug_redirect` for a former slug.
    """
    with connection.cursor() as cursor:
        cursor.execute(_store_sql(), [slug])
        rows = cursor.fetchall()
    if not rows:
        raise NotFound("No such store.", code="shop_not_found")
    shop = StoreShop(*rows[0][:5])
    products = [
        StoreProduct(r[5], r[6], r[7], _money(r[8]), _money(r[9]), r[10], bool(r[11]), *r[12:16])
        for r in rows
        if r[5] is not None
    ]
    return shop, products


PAGE_SIZE = 24
_STORE_FIELDS = (
    "id", "name", "description", "mrp", "price", "stock", "is_available",
    "thumb_small", "thumb", "thumb_width", "thumb_height",
)  # fmt: skip


@dataclass(frozen=True)
class StorePage:
    shop: StoreShop
    products: list[StoreProduct]
    categories: list[tuple[str, int]]  # (category, listed products in it), "" excluded; by name
    total: int  # listed products in the shop (all categories)
    matching: int | None  # products matching q/category, None when neither is given
    next_after: str | None  # the cursor of the next page, None on the last


def encode_cursor(name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([name, pk]).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[str, int]:
    """ValidationFailed ``invalid_cursor`` for anything :func:`encode_cursor` did not make."""
    try:
        name, pk = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if isinstance(name, str) and type(pk) is int and 0 < pk < 2**63 and len(name) <= 120:
            return name, pk
    except (ValueError, TypeError, UnicodeDecodeError):
        pass
    raise ValidationFailed("This page link is broken; start from the first page.", code="invalid_cursor")


def store_page(slug: str, *, q: str = "", category: str = "", after: str = "") -> StorePage:
    """One page (``PAGE_SIZE``) of the public store: listed, non-archived products by (name, id), keyset-paged on
    the index (shop, name, id) so page 200 of a 5,000-product shop costs what page 1 does. ``q`` matches name or
    description (case-insensitive), ``category`` the vendor's category exactly. Category counts are over the
    whole shop. Raises NotFound ``shop_not_found``, ValidationFailed ``invalid_cursor``."""
    shop_row = (
        Shop.objects.filter(slug=slug).values_list("id", "name", "slug", "currency", "contact_phone").first()
    )
    if shop_row is None:
        raise NotFound("No such store.", code="shop_not_found")
    shop = StoreShop(*shop_row)
    listed = Product.objects.on_store().filter(shop_id=shop.id)
    qs = listed
    if category:
        qs = qs.filter(category=category)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(description__icontains=q))
    if after:
        name, pk = decode_cursor(after)
        qs = qs.filter(Q(name__gt=name) | Q(name=name, id__gt=pk))
    rows = list(qs.order_by("name", "id").values_list(*_STORE_FIELDS)[: PAGE_SIZE + 1])
    products = [
        StoreProduct(r[0], r[1], r[2], _money(r[3]), _money(r[4]), r[5], bool(r[6]), *r[7:11])
        for r in rows[:PAGE_SIZE]
    ]
    counts = list(listed.order_by().values_list("category").annotate(n=Count("id")).order_by("category"))
    last = products[-1] if len(rows) > PAGE_SIZE else None
    matching = None
    if q or category:
        base = listed.filter(category=category) if category else listed
        matching = base.filter(Q(name__icontains=q) | Q(description__icontains=q)).count() if q else None
        if matching is None:
            matching = next((n for c, n in counts if c == category), 0)
    return StorePage(
        shop=shop,
        products=products,
        categories=[(c, n) for c, n in counts if c],
        total=sum(n for _, n in counts),
        matching=matching,
        next_after=encode_cursor(last.name, last.id) if last else None,
    )


def shop_id_by_slug(slug: str) -> int:
    """NotFound ``shop_not_found``."""
    pk = Shop.objects.filter(slug=slug).values_list("id", flat=True).first()
    if pk is None:
        raise NotFound("No such store.", code="shop_not_found")
    return pk


def product_on_store(shop_id: int, product_id: int) -> bool:
    """Whether the product is on the shop's public page (listed, not archived)."""
    return Product.objects.on_store().filter(shop_id=shop_id, pk=product_id).exists()


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return self.product.price * self.quantity


def cart_lines(slug: str, cart: dict[int, int]) -> tuple[Shop, list[CartLine], list[str]]:
    """The shop, the cart's orderable lines (by name, prices from the database) and the names of products in the
    cart that can no longer be ordered (unlisted, unavailable, out of stock: dropped, and said so). Quantities
    above the stock are lowered to it. NotFound ``shop_not_found``."""
    shop = Shop.objects.filter(slug=slug).first()
    if shop is None:
        raise NotFound("No such store.", code="shop_not_found")
    lines, dropped = [], []
    for product in Product.objects.filter(shop=shop, pk__in=list(cart)).order_by("name", "id"):
        if not product.orderable:
            dropped.append(product.name)
            continue
        lines.append(CartLine(product, min(cart[product.pk], product.stock)))
    return shop, lines, dropped


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    label: str
    actor: str


def order_timeline(order: Order) -> list[TimelineEntry]:
    """Placement (the order's ``created_at``, by the customer) and every later change, oldest first."""
    entries = [TimelineEntry(order.created_at, "Placed", "Customer")]
    entries += [TimelineEntry(e.at, e.label, e.actor) for e in order.events.all()]
    return entries


def shop_categories(shop: Shop) -> list[str]:
    """The categories a shop's live products use (the product form offers them)."""
    return list(
        Product.objects.live()
        .filter(shop=shop)
        .exclude(category="")
        .order_by("category")
        .values_list("category", flat=True)
        .distinct()
    )


def slug_redirect(slug: str) -> str | None:
    """The current slug of the shop that used to be at ``slug``, or None."""
    row = ShopSlugHistory.objects.select_related("shop").filter(slug=slug).first()
    return row.shop.slug if row is not None else None


def product_list(shop: Shop, *, include_archived: bool = False) -> QuerySet[Product]:
    qs = Product.objects.filter(shop=shop)
    return qs if include_archived else qs.live()


def product_get(shop: Shop, product_id: int) -> Product:
    """One of the shop's live products; NotFound ``product_not_found`` for anyone else's."""
    product = Product.objects.live().filter(shop=shop, pk=product_id).first()
    if product is None:
        raise NotFound("No such product.", code="product_not_found")
    return product


def order_list(shop: Shop, *, status: str | None = None) -> QuerySet[Order]:
    """The shop's orders newest first, optionally filtered by fulfilment status (ValidationFailed if unknown)."""
    qs = Order.objects.filter(shop=shop).order_by("-created_at", "-id")
    if status:
        if status not in OrderStatus.values:
            raise ValidationFailed(
                "Unknown status.", code="invalid_status", details={"allowed": OrderStatus.values}
            )
        qs = qs.filter(status=status)
    return qs


def order_get(shop: Shop, order_id: int) -> Order:
    """One of the shop's orders with its lines; NotFound ``order_not_found`` for anyone else's."""
    order = Order.objects.prefetch_related("items__product", "events").filter(shop=shop, pk=order_id).first()
    if order is None:
        raise NotFound("No such order.", code="order_not_found")
    return order


def order_public(slug: str, number: str) -> Order:
    """An order by its (unguessable) number for the customer's confirmation page."""
    order = (
        Order.objects.select_related("shop")
        .prefetch_related("items__product", "events")
        .filter(shop__slug=slug, number=number)
        .first()
    )
    if order is None:
        raise NotFound("No such order.", code="order_not_found")
    return order


@dataclass(frozen=True)
class MailLine:
    quantity: int
    product_name: str
    unit_price: Decimal
    line_total: Decimal
    thumb_small: str


@dataclass(frozen=True)
class OrderMail:
    """What the vendor's new-order e-mail shows: the order (with ``.shop``), its lines and the recipient."""

    order: Order
    lines: list[MailLine]
    recipient: str


@functools.cache
def _mail_sql() -> str:
    o, s, u, i, p = (sql.table(m) for m in (Order, Shop, User, OrderItem, Product))
    columns = (
        "o.id, o.number, o.customer_name, o.phone, o.address, o.total, o.currency, s.id, s.name, s.slug,"
        " s.contact_email, u.email, i.quantity, i.product_name, i.unit_price, i.line_total, p.thumb_small"
    )
    joins = (
        f"{o} o JOIN {s} s ON s.id = o.shop_id JOIN {u} u ON u.id = s.owner_id"
        f" LEFT JOIN {i} i ON i.order_id = o.id LEFT JOIN {p} p ON p.id = i.product_id"
    )
    return f"SELECT {columns} FROM {joins} WHERE o.id = %s ORDER BY i.id"  # noqa: S608 (table names only)


def order_for_mail(order_id: int) -> OrderMail | None:
    """The new-order e-mail's data in one prepared statement (order, shop, owner, lines and their thumbnails),
    no ORM query building: it runs once per order. None when the order no longer exists. The recipient is the
    shop's contact address, else its owner's (may be empty)."""
    with sql.cursor() as cur:
        cur.execute(_mail_sql(), [order_id])
        rows = cur.fetchall()
    if not rows:
        return None
    first = rows[0]
    shop = sql.instance(
        Shop, {"id": first[7], "name": first[8], "slug": first[9], "contact_email": first[10]}
    )
    order = sql.instance(
        Order,
        dict(
            zip(
                ("id", "number", "customer_name", "phone", "address", "total", "currency", "shop_id"),
                (*first[:5], sql.money(first[5]), first[6], shop.pk),
                strict=True,
            )
        ),
    )
    order.shop = shop
    lines = [
        MailLine(int(r[12]), r[13], sql.money(r[14]), sql.money(r[15]), r[16] or "")
        for r in rows
        if r[12] is not None
    ]
    return OrderMail(order=order, lines=lines, recipient=first[10] or first[11] or "")


@dataclass(frozen=True)
class DayPoint:
    day: dt.date
    orders: int
    revenue: Decimal


@dataclass(frozen=True)
class TopProduct:
    product_id: int
    name: str
    quantity: int
    revenue: Decimal


@dataclass(frozen=True)
class Summary:
    days: list[DayPoint]
    top_products: list[TopProduct]
    low_stock: list[Product]
    orders_total: int
    revenue_total: Decimal
    open_orders: int


def dashboard_summary(shop: Shop, *, days: int = 30, now: dt.datetime | None = None) -> Summary:
    """Orders and revenue per day for the last ``days`` days (cancelled orders excluded; days in the shop's
    time zone, midnight to midnight there, every day present even with zero), the top five products by quantity,
    low-stock products."""
    tz = zoneinfo.ZoneInfo(shop.timezone)
    today = timezone.localdate(now or timezone.now(), timezone=tz)
    start_day = today - dt.timedelta(days=days - 1)
    start = timezone.make_aware(dt.datetime.combine(start_day, dt.time.min), tz)
    counted = Order.objects.filter(shop=shop, created_at__gte=start).exclude(status=OrderStatus.CANCELLED)
    per_day: dict[dt.date, tuple[int, Decimal]] = {}
    for created_at, total in counted.values_list("created_at", "total"):
        d = timezone.localtime(created_at, tz).date()
        n, rev = per_day.get(d, (0, Decimal("0.00")))
        per_day[d] = (n + 1, rev + total)
    points = [
        DayPoint(d, *per_day.get(d, (0, Decimal("0.00"))))
        for d in (start_day + dt.timedelta(days=i) for i in range(days))
    ]
    top = (
        OrderItem.objects.filter(order__shop=shop, order__created_at__gte=start)
        .exclude(order__status=OrderStatus.CANCELLED)
        .values("product_id", "product__name")
        .annotate(qty=Sum("quantity"), rev=Sum("line_total"), n=Count("id"))
        .order_by("-qty", "product_id")[:5]
    )
    low = list(
        Product.objects.live()
        .filter(shop=shop, is_listed=True, stock__lte=conf.low_stock_threshold())
        .order_by("stock", "name")[:20]
    )
    return Summary(
        days=points,
        top_products=[
            TopProduct(t["product_id"], t["product__name"], t["qty"], _money(t["rev"]).quantize(_CENT))
            for t in top
        ],
        low_stock=low,
        orders_total=sum(p.orders for p in points),
        revenue_total=sum((p.revenue for p in points), Decimal("0.00")),
        open_orders=Order.objects.filter(
            shop=shop, status__in=[OrderStatus.PLACED, OrderStatus.CONFIRMED]
        ).count(),
    )


CSV_HEADER = [
    "number",
    "created_at",
    "status",
    "payment_status",
    "customer_name",
    "phone",
    "address",
    "items",
    "total",
    "currency",
]


def order_csv_rows(shop: Shop, *, status: str | None = None) -> Iterator[list[str]]:
    """Rows for the CSV export, streamed in chunks (constant memory for any number of orders). Times are the
    shop's (its time zone, with the offset written: ``2026-12-05T01:30:00+05:30``), as on its pages."""
    yield CSV_HEADER
    tz = zoneinfo.ZoneInfo(shop.timezone)
    qs = order_list(shop, status=status).prefetch_related("items")
    for order in qs.iterator(chunk_size=500):
        items = "; ".join(f"{i.quantity} x {i.product_name} @ {i.unit_price}" for i in order.items.all())
        yield [
            order.number,
            timezone.localtime(order.created_at, tz).isoformat(),
            order.status,
            order.payment_status,
            order.customer_name,
            order.phone,
            order.address.replace("\r", " ").replace("\n", " "),
            items,
            str(order.total),
            order.currency,
        ]
