"""Storefront fixtures: two vendors with shops, and a product factory."""

from __future__ import annotations

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
