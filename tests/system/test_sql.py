"""bazaar.core.sql: one-statement inserts that behave like save() (auto_now, adaptation, primary keys)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from bazaar.accounts.models import User
from bazaar.core import sql
from bazaar.storefront.models import Product, Shop

pytestmark = pytest.mark.django_db


def _shop() -> Shop:
    owner = User.objects.create_user(username="owner", password="x-long-password-1")
    return Shop.objects.create(owner=owner, name="Shop", slug="shop")


FIELDS = ("shop", "name", "description", "mrp", "price", "stock", "is_available", "is_listed", "is_archived", "category", "image", "thumb_small", "thumb", "thumb_width", "thumb_height", "created_at", "updated_at")  # fmt: skip


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


def test_a_field_the_row_did_not_carry_is_loud_not_a_silent_query() -> None:
    shop = _shop()
    product = Product.objects.create(
        shop=shop, name="real", mrp=Decimal("5.00"), price=Decimal("4.00"), stock=7
    )
    p = sql.instance(Product, {"id": product.pk, "shop_id": shop.pk, "name": "real"})
    with (
        CaptureQueriesContext(connection) as queries,
        pytest.raises(sql.UnloadedField, match=r"Product\.stock"),
    ):
        _ = p.stock
    assert len(queries) == 0
    p.refresh_from_db()  # an explicit full reload is allowed and makes it an ordinary instance
    assert (p.stock, p.price) == (7, Decimal("4.00"))
    Product.objects.filter(pk=p.pk).update(stock=3)
    p.refresh_from_db(fields=["stock"])
    assert p.stock == 3


def test_insert_with_a_second_write_is_one_unit() -> None:
    """``with_sql`` rides along the INSERT (PostgreSQL: one statement) and fails with it."""
    shop = _shop()
    rename = f"UPDATE {sql.table(Shop)} SET name = %s WHERE id = %s"
    ok = Product(shop=shop, name="a", mrp=Decimal("1.00"), price=Decimal("1.00"), stock=1)
    sql.insert([ok], FIELDS, with_sql=rename, with_params=["Renamed", shop.pk])
    assert Shop.objects.get(pk=shop.pk).name == "Renamed"
    assert Product.objects.filter(pk=ok.pk, name="a").exists()
    bad = Product(shop=shop, name="b", mrp=Decimal("1.00"), price=Decimal("1.00"), stock=-1)
    with pytest.raises(IntegrityError), transaction.atomic():
        sql.insert([bad], FIELDS, with_sql=rename, with_params=["Again", shop.pk])
    assert Shop.objects.get(pk=shop.pk).name == "Renamed"
    assert Product.objects.count() == 1


def test_update_with_a_second_write_counts_its_own_rows() -> None:
    shop = _shop()
    p = Product.objects.create(shop=shop, name="a", mrp=Decimal("5.00"), price=Decimal("4.00"), stock=3)
    p.stock = 7
    rename = f"UPDATE {sql.table(Shop)} SET name = %s WHERE id = %s"
    assert sql.update(p, ("stock",), with_sql=rename, with_params=["Both", shop.pk]) == 1
    assert Product.objects.get(pk=p.pk).stock == 7
    assert Shop.objects.get(pk=shop.pk).name == "Both"
    ghost = sql.instance(Product, {"id": p.pk + 1000, "stock": 1})
    assert sql.update(ghost, ("stock",)) == 0


def test_load_converts_like_the_orm() -> None:
    """Columns read by a raw cursor become what the ORM would load: aware datetimes, Decimal, decoded JSON."""
    shop = _shop()
    p = Product.objects.create(shop=shop, name="a", mrp=Decimal("5.00"), price=Decimal("4.50"), stock=3)
    names = ("id", "price", "created_at")
    with sql.cursor() as cur:
        cur.execute(f"SELECT id, price, created_at FROM {sql.table(Product)} WHERE id = %s", [p.pk])
        row = cur.fetchone()
    loaded = sql.load(Product, names, row)
    orm = Product.objects.only(*names).get(pk=p.pk)
    assert (loaded.pk, loaded.price, loaded.created_at) == (orm.pk, orm.price, orm.created_at)
    assert isinstance(loaded.price, Decimal)
    assert loaded.created_at.tzinfo is not None


@pytest.mark.postgres
def test_cursor_prepares_its_statements_on_postgresql() -> None:
    """Statements through sql.cursor() are prepared once per connection and still logged by Django."""
    shop = _shop()
    statement = f"SELECT name FROM {sql.table(Shop)} WHERE id = %s"
    with CaptureQueriesContext(connection) as seen:
        for _ in range(3):
            with sql.cursor() as cur:
                cur.execute(statement, [shop.pk])
                assert cur.fetchone() == ("Shop",)
    assert len(seen.captured_queries) == 3
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement = %s",
            [statement.replace("%s", "$1")],
        )
        assert cur.fetchone() == (1,)


@pytest.mark.postgres
def test_prepared_statements_can_be_switched_off(settings: Any) -> None:
    settings.DATABASE_PREPARED_STATEMENTS = False
    connection.ensure_connection()
    connection.connection.prepare_threshold = None  # as Django connects
    shop = _shop()
    statement = f"SELECT slug FROM {sql.table(Shop)} WHERE id = %s"
    for _ in range(6):
        with sql.cursor() as cur:
            cur.execute(statement, [shop.pk])
            assert cur.fetchone() == ("shop",)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement = %s",
            [statement.replace("%s", "$1")],
        )
        assert cur.fetchone() == (0,)


def test_fetchone_reads_one_row_or_none() -> None:
    shop = _shop()
    statement = f"SELECT name, slug FROM {sql.table(Shop)} WHERE id = %s"
    assert sql.fetchone(statement, [shop.pk]) == ("Shop", "shop")
    assert sql.fetchone(statement, [shop.pk + 1]) is None
    with CaptureQueriesContext(connection) as seen:  # queries being logged: through Django's cursor, logged
        assert sql.fetchone(statement, [shop.pk]) == ("Shop", "shop")
    assert len(seen.captured_queries) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fetchone_keeps_one_prepared_cursor_and_survives_a_new_connection() -> None:
    shop = _shop()
    statement = f"SELECT slug FROM {sql.table(Shop)} WHERE id = %s AND slug <> %s"
    for _ in range(6):
        assert sql.fetchone(statement, [shop.pk, "x"]) == ("shop",)
    kept = connection._bazaar_hot_cursor  # type: ignore[attr-defined]
    assert sql.fetchone(statement, [shop.pk, "x"]) == ("shop",)
    assert connection._bazaar_hot_cursor is kept  # type: ignore[attr-defined]
    with connection.cursor() as cur:
        prepared = statement.replace("%s", "$1", 1).replace("%s", "$2", 1)
        cur.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement = %s", [prepared])
        assert cur.fetchone() == (1,)
    connection.close()  # Django reconnects on next use; the kept cursor belongs to the old connection
    assert sql.fetchone(statement, [shop.pk, "x"]) == ("shop",)
    assert connection._bazaar_hot_cursor is not kept  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_fetchone_loads_timestamps_as_the_orm_does() -> None:
    """The kept cursor loads timestamptz with psycopg's own loader (the session is in UTC): the same instants as
    the ORM's, aware, with a zero offset, and the same ISO text."""
    import datetime as dt

    shop = _shop()
    created = sql.fetchone(f"SELECT created_at FROM {sql.table(Shop)} WHERE id = %s", [shop.pk])
    assert created is not None
    (loaded,) = created
    orm = Shop.objects.get(pk=shop.pk).created_at
    assert loaded == orm
    assert loaded.utcoffset() == dt.timedelta(0)
    assert loaded.isoformat() == orm.isoformat()
    for text in ["2026-01-01 00:00:00+00", "1999-12-31 23:59:59.5+00", "2026-07-01 12:00:00.000001+02"]:
        row = sql.fetchone("SELECT %s::timestamptz", [text])
        assert row is not None
        assert row[0] == dt.datetime.fromisoformat(text.replace(" ", "T") + ":00")
        assert row[0].utcoffset() == dt.timedelta(0)
    from psycopg.pq import Format

    kept = connection._bazaar_hot_cursor  # type: ignore[attr-defined]
    oid = kept.adapters.types["timestamptz"].oid
    loader = kept.adapters.get_loader(oid, Format.TEXT)
    assert loader is not None
    assert loader.__module__.startswith(
        "psycopg"
    )  # psycopg's own (C where built), not Django's wrapper around it


@pytest.mark.postgres
def test_fetchone_translates_errors_and_refuses_a_broken_transaction() -> None:
    from django.db import DatabaseError
    from django.db.transaction import TransactionManagementError

    with transaction.atomic():
        with (
            pytest.raises(DatabaseError),
            transaction.atomic(savepoint=False),
        ):  # Django's class, not psycopg's
            sql.fetchone("SELECT 1 / %s", [0])
        with pytest.raises(TransactionManagementError):  # the failed block marked the transaction
            sql.fetchone("SELECT %s", [1])
    assert sql.fetchone("SELECT %s::int", [7]) == (7,)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fetchone_is_under_the_client_deadline() -> None:
    from django.db import OperationalError

    from bazaar.core import db

    cut = db.WATCHDOG.cut
    try:
        with db.deadline(0.3), pytest.raises(OperationalError):
            sql.fetchone("SELECT pg_sleep(%s)", [3])
        assert db.WATCHDOG.cut == cut + 1
        assert db.BREAKER.is_open
    finally:
        db.BREAKER.succeeded()
        connection.close()
    assert sql.fetchone("SELECT %s::int", [1]) == (1,)
