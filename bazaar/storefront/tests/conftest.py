"""Storefront fixtures: two vendors with shops, and a product factory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

from bazaar.storefront.models import Product, Shop


@pytest.fixture
def vendor(make_user: Any) -> Any:
    user = make_user("vera")
    Shop.objects.create(
        owner=user, name="Vera's Spices", slug="vera-spices", contact_email="vera@example.com"
    )
    return user


@pytest.fixture
def other_vendor(make_user: Any) -> Any:
    user = make_user("otto")
    Shop.objects.create(owner=user, name="Otto's Tea", slug="otto-tea", contact_email="otto@example.com")
    return user


@pytest.fixture
def make_product(db: Any) -> Any:
    def make(
        owner: Any, name: str = "Tea", price: str = "90.00", mrp: str = "100.00", stock: int = 10, **kw: Any
    ) -> Product:
        return Product.objects.create(
            shop=owner.shop, name=name, price=Decimal(price), mrp=Decimal(mrp), stock=stock, **kw
        )

    return make


def place_order(slug: str, product_id: int, quantity: int = 1, *, key: str = "k") -> Any:
    """A customer's order of one line at the store ``slug``, as the checkout places it (the PlaceResult)."""
    from bazaar.storefront import services

    return services.order_place(
        slug=slug,
        lines=[services.OrderLine(product_id, quantity, None)],
        customer_name="Asha",
        phone="98765 43210",
        address="1 Road",
        idempotency_key=key,
    )


def store_state() -> tuple[Any, ...]:
    """Everything a refused storefront write (API or form) must leave alone: accounts and tokens, shops, products
    (stock), orders, their lines and their timeline."""
    from bazaar.accounts.models import ApiToken, User
    from bazaar.storefront.models import Order, OrderEvent, OrderItem

    return (
        list(User.objects.order_by("pk").values_list("pk", "username")),
        ApiToken.objects.count(),
        list(
            Shop.objects.order_by("pk").values_list(
                "pk", "owner_id", "name", "slug", "currency", "contact_email"
            )
        ),
        list(
            Product.objects.order_by("pk").values_list(
                "pk", "shop_id", "name", "price", "mrp", "stock", "is_available", "is_listed", "is_archived"
            )
        ),
        list(Order.objects.order_by("pk").values_list("pk", "number", "status", "payment_status", "total")),
        list(OrderItem.objects.order_by("pk").values_list("order_id", "product_id", "quantity")),
        OrderEvent.objects.count(),
    )


@contextmanager
def writes_nothing() -> Iterator[None]:
    """The block (a refused write) changes nothing :func:`store_state` sees."""
    before = store_state()
    yield
    assert store_state() == before
