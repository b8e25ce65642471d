"""Storefront data: shops (with slug history), products, orders and their idempotency keys.

Invariants live in the database: unique shop slug, product name unique within a shop (among live products),
prices >= 0 and selling <= MRP, stock >= 0, quantities > 0, one idempotency key per shop.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower

from bazaar.core.freshness import FreshQuerySet


class Shop(models.Model):
    """A vendor's shop. One per user; ``slug`` is the public link ``/s/<slug>/``."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="shop")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    currency = models.CharField(max_length=3, default="INR")
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=30, blank=True)
    timezone = models.CharField(
        max_length=64, default="Asia/Kolkata", help_text="Times on the shop's pages are shown in this zone."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FreshQuerySet["Shop"].as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(slug__regex=r"^[a-z0-9]+(-[a-z0-9]+)*$"), name="shop_slug_format"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def timezone_label(self) -> str:
        """The zone and its abbreviation now, as pages and the chart say it: "Asia/Kolkata (IST)"."""
        abbr = dt.datetime.now(zoneinfo.ZoneInfo(self.timezone)).strftime("%Z")
        return f"{self.timezone} ({abbr})" if abbr and abbr not in self.timezone else self.timezone


class ShopSlugHistory(models.Model):
    """A slug a shop used before: ``/s/<old>/`` answers 301 to the current slug. Never reusable by others."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="old_slugs")
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "shop slug history"

    def __str__(self) -> str:
        return f"{self.slug} → {self.shop.slug}"


class ProductQuerySet(FreshQuerySet["Product"]):
    def live(self) -> ProductQuerySet:
        return self.filter(is_archived=False)

    def on_store(self) -> ProductQuerySet:
        """What the public page shows: listed, not archived (available or not)."""
        return self.filter(is_archived=False, is_listed=True)


class Product(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="products")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=4000)
    mrp = models.DecimalField(max_digits=12, decimal_places=2)
    price = models.DecimalField(max_digits=12, decimal_places=2, help_text="Selling price (≤ MRP).")
    stock = models.IntegerField(default=0)
    is_available = models.BooleanField(default=True, help_text="Can be ordered now.")
    is_listed = models.BooleanField(default=True, help_text="Shown on the public store page.")
    is_archived = models.BooleanField(default=False, help_text="Deleted, kept because orders refer to it.")
    category = models.CharField(max_length=60, blank=True, help_text="The vendor's own grouping, e.g. “Tea”.")
    image = models.ImageField(upload_to="storefront/products/", blank=True)
    # Made once at upload (storefront.images): storage names of the 240 and 480 px wide JPEGs, and the larger
    # one's size, so pages can set width/height (no layout shift) without opening a file.
    thumb_small = models.CharField(max_length=200, blank=True)
    thumb = models.CharField(max_length=200, blank=True)
    thumb_width = models.PositiveIntegerField(default=0)
    thumb_height = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        # The store's keyset pages walk (name, id) within a shop; the category filter narrows the same walk.
        indexes = [
            models.Index(fields=["shop", "name", "id"], name="product_shop_name_id"),
            models.Index(fields=["shop", "category", "name", "id"], name="product_shop_category"),
        ]
        constraints = [
            models.UniqueConstraint(
                Lower("name"), "shop", condition=Q(is_archived=False), name="product_name_unique_in_shop"
            ),
            models.CheckConstraint(condition=Q(stock__gte=0), name="product_stock_gte_0"),
            models.CheckConstraint(condition=Q(price__gte=0) & Q(mrp__gte=0), name="product_prices_gte_0"),
            models.CheckConstraint(condition=Q(price__lte=F("mrp")), name="product_price_lte_mrp"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def discount_percent(self) -> int:
        if not self.mrp or self.price >= self.mrp:
            return 0
        return int((Decimal(100) * (self.mrp - self.price) / self.mrp).quantize(Decimal(1)))

    @property
    def thumb_small_url(self) -> str:
        return default_storage.url(self.thumb_small) if self.thumb_small else ""

    @property
    def thumb_url(self) -> str:
        return default_storage.url(self.thumb) if self.thumb else ""

    @property
    def thumb_display_height(self) -> int:
        """Height at the 240 px display width (for the img's height attribute)."""
        return round(self.thumb_height * 240 / self.thumb_width) if self.thumb_width else 240

    @property
    def orderable(self) -> bool:
        return self.is_available and self.is_listed and not self.is_archived and self.stock > 0


class OrderStatus(models.TextChoices):
    PLACED = "placed", "Placed"
    CONFIRMED = "confirmed", "Confirmed"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    REFUNDED = "refunded", "Refunded"


#: The fulfilment state machine: every legal move. Anything else is a 409.
TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.PLACED: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}

PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    PaymentStatus.PENDING: frozenset({PaymentStatus.PAID}),
    PaymentStatus.PAID: frozenset({PaymentStatus.REFUNDED}),
    PaymentStatus.REFUNDED: frozenset(),
}


class Order(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.PROTECT, related_name="orders")
    number = models.CharField(max_length=20, unique=True, help_text="Public, unguessable order number.")
    customer_name = models.CharField(max_length=120)
    phone = models.CharField(max_length=30)
    address = models.TextField(max_length=1000)
    status = models.CharField(max_length=12, choices=OrderStatus.choices, default=OrderStatus.PLACED)
    payment_status = models.CharField(
        max_length=12, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    total = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["shop", "-created_at"], name="order_shop_newest")]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_gte_0"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in OrderStatus]), name="order_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(payment_status__in=[s.value for s in PaymentStatus]), name="order_payment_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def next_statuses(self) -> list[str]:
        return sorted(TRANSITIONS[self.status])

    @property
    def next_payment_statuses(self) -> list[str]:
        return sorted(PAYMENT_TRANSITIONS[self.payment_status])


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_items")
    product_name = models.CharField(max_length=120, help_text="Name when ordered.")
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.PositiveIntegerField()
    line_total = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orderitem_quantity_gt_0"),
            models.UniqueConstraint(fields=["order", "product"], name="orderitem_one_line_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_name}"


class OrderEvent(models.Model):
    """One change of an order after it was placed (status or payment), with when and who: the customer's and the
    vendor's timeline. The placement itself is the order's ``created_at`` (no row: placing stays one write less)."""

    class Kind(models.TextChoices):
        STATUS = "status", "Status"
        PAYMENT = "payment", "Payment"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    value = models.CharField(max_length=12)
    at = models.DateTimeField()
    actor = models.CharField(max_length=150, help_text="Who made the change (the vendor's username).")

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id} {self.kind} → {self.value}"

    @property
    def label(self) -> str:
        if self.kind == self.Kind.PAYMENT:
            return f"Payment {PaymentStatus(self.value).label.lower()}"
        return OrderStatus(self.value).label


class OrderIdempotencyKey(models.Model):
    """The first order placed with a key. A retry with the same key and body gets that order back."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=80)
    request_hash = models.CharField(max_length=64)
    order = models.OneToOneField(Order, on_delete=models.CASCADE, null=True, related_name="idempotency")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "key"], name="idempotency_key_unique_per_shop")
        ]

    def __str__(self) -> str:
        return self.key
