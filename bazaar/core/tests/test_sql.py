"""bazaar.core.sql: one-statement inserts that behave like save() (auto_now, adaptation, primary keys)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from bazaar.accounts.models import User
from bazaar.core import sql
from bazaar.storefront.models import Product, Shop

pytestmark = pytest.mark.django_db


def _shop() -> Shop:
    owner = User.objects.create_user(username="owner", password="x-long-password-1")
    return Shop.objects.create(owner=owner, name="Shop", slug="shop")


FIELDS = ("shop", "name", "description", "mrp", "price", "stock", "is_available", "is_listed", "is_archived", "image", "created_at", "updated_at")  # fmt: skip


def test_insert_sets_primary_keys_in_order_and_fills_auto_now() -> None:
    shop = _shop()
    objs = [
        Product(shop=shop, name=f"p{i}", mrp=Decimal("10.00"), price=Decimal(f"{i}.50"), stock=i)
        for i in range(3)
    ]
    sql.insert(objs, FIELDS)
    assert all(o.pk and not o._state.adding for o in objs)
    for o in objs:
        row = Product.objects.get(pk=o.pk)  # each id belongs to the object it was given to
        assert (row.name, row.price, row.stock) == (o.name, o.price, o.stock)
        assert row.created_at is not None
        assert row.updated_at is not None


def test_insert_is_one_statement_all_or_nothing() -> None:
    shop = _shop()
    good = Product(shop=shop, name="a", mrp=Decimal("1.00"), price=Decimal("1.00"), stock=1)
    bad = Product(shop=shop, name="b", mrp=Decimal("1.00"), price=Decimal("1.00"), stock=-1)  # stock >= 0
    with pytest.raises(IntegrityError), transaction.atomic():
        sql.insert([good, bad], FIELDS)
    assert Product.objects.count() == 0


def test_instance_defers_what_the_row_did_not_carry() -> None:
    shop = _shop()
    p = sql.instance(Product, {"id": 5, "shop_id": shop.pk, "price": sql.money(9), "name": "x"})
    assert (p.pk, p.shop_id, p.price, p.name) == (5, shop.pk, Decimal("9.00"), "x")
    assert "stock" in p.get_deferred_fields()
    assert sql.money("2.5") == Decimal("2.50")
    assert sql.money(Decimal("1.25")) == Decimal("1.25")
