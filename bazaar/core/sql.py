"""Hot-path SQL without the ORM's per-call compilation, for the few writes that run hundreds of times a second.

Building a query through the ORM (``QuerySet`` → ``Query`` → compiler → SQL) costs 0.3–1 ms of CPU per
statement, several times what PostgreSQL spends executing a one-row INSERT. ``insert`` builds its statement
text once per (model, fields, row count) and only adapts the values on each call; it still goes through
Django's connection (transactions, ``on_commit``, error wrapping) and through each field's own
``pre_save``/``get_db_prep_save``, so ``auto_now`` fields and value adaptation behave as in ``save()``.
It sends no model signals — use it only where nothing listens. Works on PostgreSQL and SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar, cast

from django.db import connections, models

_CENT = Decimal("0.01")
M = TypeVar("M", bound=models.Model)


def table(model: type[models.Model]) -> str:
    """The quoted table name of ``model``."""
    return connections["default"].ops.quote_name(model._meta.db_table)


@cache
def _insert_sql(
    model: type[models.Model], fields: tuple[str, ...], rows: int, vendor: str
) -> tuple[str, tuple[models.Field[Any, Any], ...], bool]:
    conn = connections["default"]
    qn = conn.ops.quote_name
    opts = model._meta
    flds = tuple(cast("models.Field[Any, Any]", opts.get_field(name)) for name in fields)
    columns = ", ".join(qn(str(f.column)) for f in flds)
    row = "(" + ", ".join(["%s"] * len(flds)) + ")"
    sql = f"INSERT INTO {qn(opts.db_table)} ({columns}) VALUES " + ", ".join([row] * rows)  # noqa: S608 (identifiers and placeholders only)
    returning = bool(conn.features.can_return_rows_from_bulk_insert)
    if returning:
        sql += f" RETURNING {qn(str(cast('models.Field[Any, Any]', opts.pk).column))}"
    return sql, flds, returning


def insert(objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """INSERT ``objs`` (one model) in one statement, listing exactly ``fields``, and set their primary keys.

    Every column without a database default must be in ``fields``. Foreign keys are given by field name
    (``"shop"``) and read from the instance's ``<name>_id``.
    """
    if not objs:
        return
    conn = connections["default"]
    model = type(objs[0])
    sql, flds, returning = _insert_sql(model, tuple(fields), len(objs), conn.vendor)
    params: list[Any] = []
    for obj in objs:
        for f in flds:
            params.append(f.get_db_prep_save(f.pre_save(obj, True), conn))
    with conn.cursor() as cur:
        cur.execute(sql, params)
        if returning:
            ids = [row[0] for row in cur.fetchall()]
        elif len(objs) == 1:
            ids = [cur.lastrowid]
        else:  # pragma: no cover - every supported database returns rows from a multi-row insert
            raise RuntimeError("this database cannot return ids from a multi-row INSERT")
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = "default"


@cache
def _update_sql(
    model: type[models.Model], fields: tuple[str, ...], vendor: str
) -> tuple[str, tuple[models.Field[Any, Any], ...]]:
    qn = connections["default"].ops.quote_name
    opts = model._meta
    flds = tuple(cast("models.Field[Any, Any]", opts.get_field(name)) for name in fields)
    sets = ", ".join(f"{qn(str(f.column))} = %s" for f in flds)
    pk = qn(str(cast("models.Field[Any, Any]", opts.pk).column))
    return f"UPDATE {qn(opts.db_table)} SET {sets} WHERE {pk} = %s", flds  # noqa: S608 (identifiers and placeholders only)


def update(obj: models.Model, fields: Sequence[str]) -> int:
    """``obj.save(update_fields=fields)`` without the ORM's compilation (and without signals). Returns the row count."""
    conn = connections["default"]
    sql, flds = _update_sql(type(obj), tuple(fields), conn.vendor)
    params = [f.get_db_prep_save(f.pre_save(obj, False), conn) for f in flds]
    with conn.cursor() as cur:
        cur.execute(sql, [*params, obj.pk])
        return int(cur.rowcount)


def lock_clause(*, of: str | None = None, skip_locked: bool = False) -> str:
    """`` FOR UPDATE [OF t] [SKIP LOCKED]`` where the database has row locks (PostgreSQL), else nothing (SQLite
    serializes writers anyway)."""
    features = connections["default"].features
    if not features.has_select_for_update:
        return ""
    out = " FOR UPDATE"
    if of and features.has_select_for_update_of:
        out += f" OF {of}"
    if skip_locked and features.has_select_for_update_skip_locked:
        out += " SKIP LOCKED"
    return out


def instance(model: type[M], values: dict[str, Any]) -> M:
    """A model instance loaded from a raw row: ``values`` by attname; other fields are deferred (loaded on access)."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db("default", names, [values[n] for n in names])


def money(value: Any) -> Decimal:
    """A money column as read by a raw cursor (PostgreSQL: Decimal; SQLite: int/float/str) as Decimal cents."""
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value)).quantize(_CENT)
