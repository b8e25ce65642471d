"""Storefront reads. Every query an interface needs is here, with its joins decided once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from django.db import connection
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from bazaar.accounts.models import User
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
    shop, product = Shop._meta.db_table, Product._meta.db_table
    # Table names come from model metadata, the slug is a bound parameter.
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
    order = Order.objects.prefetch_related("items__product").filter(shop=shop, pk=order_id).first()
    if order is None:
        raise NotFound("No such order.", code="order_not_found")
    return order


def order_public(slug: str, number: str) -> Order:
    """An order by its (unguessable) number for the customer's confirmation page."""
    order = (
        Order.objects.select_related("shop")
        .prefetch_related("items__product")
        .filter(shop__slug=slug, number=number)
        .first()
    )
    if order is None:
        raise NotFound("No such order.", code="order_not_found")
    return order


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


def dashboard_summary(shop: Shop, *, days: int = 30) -> Summary:
    """Orders and revenue per day for the last ``days`` days (cancelled orders excluded; days in the site's
    time zone, every day present even with zero), the top five products by quantity, low-stock products."""
    today = timezone.localdate()
    start_day = today - dt.timedelta(days=days - 1)
    start = timezone.make_aware(dt.datetime.combine(start_day, dt.time.min))
    counted = Order.objects.filter(shop=shop, created_at__gte=start).exclude(status=OrderStatus.CANCELLED)
    per_day: dict[dt.date, tuple[int, Decimal]] = {}
    for created_at, total in counted.values_list("created_at", "total"):
        d = timezone.localtime(created_at).date()
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
    """Rows for the CSV export, streamed in chunks (constant memory for any number of orders)."""
    yield CSV_HEADER
    qs = order_list(shop, status=status).prefetch_related("items")
    for order in qs.iterator(chunk_size=500):
        items = "; ".join(f"{i.quantity} x {i.product_name} @ {i.unit_price}" for i in order.items.all())
        yield [
            order.number,
            order.created_at.isoformat(),
            order.status,
            order.payment_status,
            order.customer_name,
            order.phone,
            order.address.replace("\r", " ").replace("\n", " "),
            items,
            str(order.total),
            order.currency,
        ]
