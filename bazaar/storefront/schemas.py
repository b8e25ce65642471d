"""Storefront API schemas: explicit fields in and out."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from ninja import Field, Schema

from bazaar.core.schemas import StrictIn


class VendorSignupIn(StrictIn):
    username: str = Field(max_length=150)
    password: str = Field(max_length=256)
    email: str = Field(max_length=254)
    shop_name: str = Field(max_length=120)
    slug: str = Field(default="", max_length=60)
    currency: str = Field(default="INR", max_length=3)
    contact_phone: str = Field(default="", max_length=30)


class ShopIn(StrictIn):
    name: str | None = Field(default=None, max_length=120)
    slug: str | None = Field(default=None, max_length=60)
    currency: str | None = Field(default=None, max_length=3)
    contact_email: str | None = Field(default=None, max_length=254)
    contact_phone: str | None = Field(default=None, max_length=30)


class ShopOut(Schema):
    id: int
    name: str
    slug: str
    currency: str
    contact_email: str
    contact_phone: str
    url: str

    @staticmethod
    def resolve_url(obj: object) -> str:
        return f"/s/{getattr(obj, 'slug', '')}/"


class SignupOut(Schema):
    shop: ShopOut
    token: str


class ProductIn(StrictIn):
    name: str = Field(max_length=120)
    description: str = Field(default="", max_length=4000)
    mrp: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    price: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    stock: int = Field(default=0, ge=0, le=10_000_000)
    is_available: bool = True
    is_listed: bool = True


class ProductPatch(StrictIn):
    name: str | None = Field(default=None, max_length=120)
    description: str | None = Field(default=None, max_length=4000)
    mrp: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    price: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    stock: int | None = Field(default=None, ge=0, le=10_000_000)
    is_available: bool | None = None
    is_listed: bool | None = None


class ProductOut(Schema):
    id: int
    name: str
    description: str
    mrp: Decimal
    price: Decimal
    stock: int
    is_available: bool
    is_listed: bool
    image: str | None

    @staticmethod
    def resolve_image(obj: object) -> str | None:
        image = getattr(obj, "image", None)
        return image.url if image else None


class PublicProductOut(Schema):
    id: int
    name: str
    description: str
    mrp: Decimal
    price: Decimal
    stock: int
    is_available: bool


class StoreOut(Schema):
    name: str
    slug: str
    currency: str
    products: list[PublicProductOut]


class OrderLineIn(StrictIn):
    product_id: int
    quantity: int = Field(ge=1)
    unit_price: Decimal | None = Field(
        default=None, ge=0, description="The price the customer saw (optional)."
    )


class OrderIn(StrictIn):
    items: list[OrderLineIn] = Field(min_length=1)
    customer_name: str = Field(max_length=120)
    phone: str = Field(max_length=30)
    address: str = Field(max_length=1000)


class OrderItemOut(Schema):
    product_id: int
    product_name: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal


class OrderOut(Schema):
    id: int
    number: str
    status: str
    payment_status: str
    customer_name: str
    phone: str
    address: str
    total: Decimal
    currency: str
    created_at: dt.datetime
    items: list[OrderItemOut]


class PublicOrderOut(Schema):
    number: str
    status: str
    total: Decimal
    currency: str
    created_at: dt.datetime
    items: list[OrderItemOut]


class OrderListItemOut(Schema):
    id: int
    number: str
    status: str
    payment_status: str
    customer_name: str
    total: Decimal
    currency: str
    created_at: dt.datetime


class StatusIn(StrictIn):
    status: str


class OrderPaymentIn(StrictIn):
    payment_status: str


class DayOut(Schema):
    day: dt.date
    orders: int
    revenue: Decimal


class TopProductOut(Schema):
    product_id: int
    name: str
    quantity: int
    revenue: Decimal


class LowStockOut(Schema):
    id: int
    name: str
    stock: int


class SummaryOut(Schema):
    days: list[DayOut]
    top_products: list[TopProductOut]
    low_stock: list[LowStockOut]
    orders_total: int
    revenue_total: Decimal
    open_orders: int


class DeletedOut(Schema):
    outcome: str


def placed_body(placed: Any) -> dict[str, Any]:
    """The public answer to a placed order (``PublicOrderOut``), for the API view and the WSGI fast path alike."""
    order = placed.order
    return {
        "number": order.number,
        "status": order.status,
        "total": order.total,
        "currency": order.currency,
        "created_at": order.created_at,
        "items": placed.items,
    }
