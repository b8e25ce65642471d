"""Hot-path SQL without the ORM's per-call compilation, for the few writes that run hundreds of times a second.

Building a query through the ORM (``QuerySet`` → ``Query`` → compiler → SQL) costs 0.3–1 ms of CPU per
statement, several times what PostgreSQL spends executing a one-row INSERT. ``insert`` builds its statement
text once per (model, fields, row count) and only adapts the values on each call; it still goes through
Django's connection (transactions, ``on_commit``, error wrapping) and through each field's own
``pre_save``/``get_db_prep_save``, so ``auto_now`` fields and value adaptation behave as in ``save()``.
It sends no model signals — use it only where nothing listens. Works on PostgreSQL and SQLite.

On PostgreSQL these statements also skip the server's per-statement parse and plan: :func:`cursor` hands out a
server-binding psycopg cursor (inside Django's cursor wrapper, so transactions, error translation and query
logging are Django's) whose statements are prepared once per connection. A hot statement joining three tables
spent more time being planned than executed (a rental lookup: 308 µs a round trip as text, 118 µs prepared).
Django keeps prepared statements off for the ORM (connection poolers in transaction mode cannot hold them);
Bazaar connects to PostgreSQL directly, and only the statements sent through :func:`cursor` are prepared
(``DATABASE_PREPARED_STATEMENTS=false`` turns it off, e.g. behind PgBouncer in transaction mode). psycopg
forgets a connection's prepared statements on every rollback (one ``DEALLOCATE ALL``), so a refused write costs
one re-prepare on that connection's next hot statement.
With ``with_sql`` an INSERT or UPDATE carries a second write in the same statement on PostgreSQL (a
data-modifying ``WITH``: one round trip instead of two); SQLite, which has no such ``WITH``, runs it first.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar, cast

from django.conf import settings
from django.db import connections, models

_CENT = Decimal("0.01")
M = TypeVar("M", bound=models.Model)


@cache
def _preparing_cursor_class() -> type[Any]:
    import psycopg

    class PreparingCursor(psycopg.Cursor[Any]):
        """Server-side binding, and every statement prepared (psycopg keeps the last 100 per connection)."""

        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None) -> Any:  # fmt: skip
            return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)

    return PreparingCursor


@cache
def _plain_cursor_class() -> type[Any]:
    import psycopg

    return psycopg.Cursor


@contextmanager
def cursor() -> Iterator[Any]:
    """A cursor for the hot statements: prepared once per connection on PostgreSQL, Django's plain cursor elsewhere.

    Statements through it use ``%s`` placeholders and must name their columns (a prepared ``SELECT *`` fails
    once a migration adds a column). Everything else about it is Django's cursor: the same connection and
    transaction, ``on_commit``, error translation (``IntegrityError``, ...) and ``connection.queries``.
    """
    conn = connections["default"]
    if conn.vendor != "postgresql":
        with conn.cursor() as cur:
            yield cur
        return
    pg = _ready(conn)
    with conn.wrap_database_errors:
        raw = (_preparing_cursor_class() if pg.prepare_threshold is not None else _plain_cursor_class())(pg)
    conn.validate_thread_sharing()
    wrapped = conn.make_debug_cursor(raw) if conn.queries_logged else conn.make_cursor(raw)
    with wrapped as cur:
        yield cur


def _ready(conn: Any) -> Any:
    """The connection's psycopg connection, connected, with preparing on (unless turned off)."""
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    pg = conn.connection
    if pg.prepare_threshold is None and settings.DATABASE_PREPARED_STATEMENTS:
        # Django connects with prepare_threshold=None, which turns preparing off even for prepare=True. Its own
        # client-binding cursors never prepare, so this only enables it for the cursors handed out here.
        pg.prepare_threshold = 5
    return pg


def fetchone(query: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """The first row of a hot read (a prepared statement on PostgreSQL), or None.

    The same connection, transaction, error translation, client deadline and breaker as :func:`cursor`, without
    building Django's cursor wrapper per statement: one psycopg cursor is kept per connection, and the statement
    goes straight to it inside ``db.watched`` (what the execute wrapper ``db.guard`` does). A KV cache miss runs
    exactly one such statement, and the wrapper layers cost as much CPU as psycopg's own execute. Where queries
    are being logged (``DEBUG``, tests counting them), on SQLite, or with preparing off, it takes :func:`cursor`.
    """
    conn = connections["default"]
    if conn.vendor != "postgresql" or conn.queries_logged or not settings.DATABASE_PREPARED_STATEMENTS:
        with cursor() as cur:
            cur.execute(query, params)
            return cast("tuple[Any, ...] | None", cur.fetchone())
    from bazaar.core import db

    pg = _ready(conn)
    conn.validate_thread_sharing()
    conn.validate_no_broken_transaction()
    # The kept cursor rides on Django's wrapper (one per thread), checked against its connection.
    holder: Any = conn
    raw = getattr(holder, "_bazaar_hot_cursor", None)
    if raw is None or raw.closed or raw.connection is not pg:
        with conn.wrap_database_errors:
            raw = _preparing_cursor_class()(pg)
            _native_utc_timestamps(raw)
        holder._bazaar_hot_cursor = raw
    with db.watched(db.socket_of(conn)), conn.wrap_database_errors:
        raw.execute(query, params)
        return cast("tuple[Any, ...] | None", raw.fetchone())


def _native_utc_timestamps(raw: Any) -> None:
    """Load ``timestamptz`` on ``raw`` with psycopg's own (C) loader when the session's time zone is UTC.

    Django registers a Python loader around psycopg's that only relabels the result's zone as Django's UTC; with
    the session in UTC (Django sets it on connect) psycopg's own answers the same instant, aware in UTC, for about
    15 µs less per row of two timestamps (the KV miss's statement: 67 → 52 µs of CPU)."""
    from psycopg.types.datetime import TimestamptzLoader

    if str(raw.connection.info.timezone) in {"UTC", "Etc/UTC"}:
        raw.adapters.register_loader("timestamptz", TimestamptzLoader)


def supports_write_with() -> bool:
    """Whether a data-modifying ``WITH`` can ride along an INSERT/UPDATE (PostgreSQL)."""
    return connections["default"].vendor == "postgresql"


def _run_with(cur: Any, sql: str, params: list[Any], with_sql: str | None, with_params: Sequence[Any]) -> tuple[str, list[Any]]:  # fmt: skip
    """Prefix ``with_sql`` to ``sql`` (PostgreSQL), or run it first on its own (SQLite)."""
    if with_sql is None:
        return sql, params
    if supports_write_with():
        return f"WITH _also AS ({with_sql}) {sql}", [*with_params, *params]
    cur.execute(with_sql, list(with_params))
    return sql, params


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
        sql += f" RETURNING {qn(str(opts.pk.column))}"
    return sql, flds, returning


def insert(
    objs: Sequence[models.Model],
    fields: Sequence[str],
    *,
    with_sql: str | None = None,
    with_params: Sequence[Any] = (),
) -> None:
    """INSERT ``objs`` (one model) in one statement, listing exactly ``fields``, and set their primary keys.

    Every column without a database default must be in ``fields``. Foreign keys are given by field name
    (``"shop"``) and read from the instance's ``<name>_id``. ``with_sql`` (an UPDATE/INSERT/DELETE with ``%s``
    placeholders for ``with_params``) is written in the same statement on PostgreSQL, just before on SQLite.
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
    with cursor() as cur:
        sql, params = _run_with(cur, sql, params, with_sql, with_params)
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
    pk = qn(str(opts.pk.column))
    return f"UPDATE {qn(opts.db_table)} SET {sets} WHERE {pk} = %s", flds  # noqa: S608 (identifiers and placeholders only)


def update(
    obj: models.Model,
    fields: Sequence[str],
    *,
    with_sql: str | None = None,
    with_params: Sequence[Any] = (),
) -> int:
    """``obj.save(update_fields=fields)`` without the ORM's compilation (and without signals). Returns the row
    count of ``obj``'s UPDATE. ``with_sql``/``with_params`` as for :func:`insert`."""
    conn = connections["default"]
    sql, flds = _update_sql(type(obj), tuple(fields), conn.vendor)
    params = [f.get_db_prep_save(f.pre_save(obj, False), conn) for f in flds]
    with cursor() as cur:
        sql, all_params = _run_with(cur, sql, [*params, obj.pk], with_sql, with_params)
        cur.execute(sql, all_params)
        return int(cur.rowcount)


def lock_clause(*, of: str | None = None, skip_locked: bool = False, strength: str = "UPDATE") -> str:
    """`` FOR <strength> [OF t] [SKIP LOCKED]`` where the database has row locks (PostgreSQL), else nothing
    (SQLite serializes writers anyway). ``strength``: ``UPDATE``, ``NO KEY UPDATE``, ``SHARE`` or ``KEY SHARE``
    (the one the ORM cannot ask for: what a foreign-key check takes, so it waits only for a delete or a key
    change)."""
    if strength not in _LOCK_STRENGTHS:
        raise ValueError(f"unknown row lock strength {strength!r}")
    features = connections["default"].features
    if not features.has_select_for_update:
        return ""
    out = f" FOR {strength}"
    if of and features.has_select_for_update_of:
        out += f" OF {of}"
    if skip_locked and features.has_select_for_update_skip_locked:
        out += " SKIP LOCKED"
    return out


_LOCK_STRENGTHS = ("UPDATE", "NO KEY UPDATE", "SHARE", "KEY SHARE")


class UnloadedField(LookupError):
    """A field of an instance built by :func:`instance` that its statement did not read was accessed."""


def instance(model: type[M], values: dict[str, Any]) -> M:
    """A model instance loaded from a raw row: ``values`` by attname. The other fields are *not loaded*, and reading
    one is an error (:class:`UnloadedField`), never a silent query: the ORM would load a deferred field with one
    ``SELECT`` per access, the very cost these statements exist to avoid. A full ``refresh_from_db()`` still works
    (it loads every field and the instance is an ordinary one from then on)."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    obj = model.from_db("default", names, [values[n] for n in names])
    setattr(obj, "refresh_from_db", functools.partial(_refresh_partial, obj))  # noqa: B010 (shadows the method)
    return obj


def _refresh_partial(
    obj: models.Model,
    using: str | None = None,
    fields: Sequence[str] | None = None,
    from_queryset: Any = None,
) -> None:
    if fields is not None:  # how Django loads a deferred field on access: refresh_from_db(fields=[name])
        raise UnloadedField(
            f"{type(obj).__name__}.{', '.join(fields)} was not read by the raw statement that built this instance "
            "(bazaar.core.sql.instance): add the column to the statement, or load the row with the ORM."
        )
    del obj.__dict__["refresh_from_db"]  # an ordinary instance again
    obj.refresh_from_db(using=using, from_queryset=from_queryset)


@cache
def _converters(
    model: type[models.Model], attnames: tuple[str, ...], vendor: str
) -> tuple[tuple[Any, ...], ...]:
    conn = connections["default"]
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    out = []
    for name in attnames:
        field = by_attname[name]
        col = field.get_col(model._meta.db_table)
        out.append((col, *conn.ops.get_db_converters(col), *col.get_db_converters(conn)))
    return tuple(out)


def load(model: type[M], attnames: Sequence[str], row: Sequence[Any]) -> M:
    """A model instance from columns a raw cursor read, converted exactly as the ORM converts them (the backend's
    converters, then the field's: JSON decoded, SQLite's datetimes made aware, decimals as ``Decimal``)."""
    conn = connections["default"]
    values = []
    for value, (col, *convs) in zip(row, _converters(model, tuple(attnames), conn.vendor), strict=True):
        for convert in convs:
            value = convert(value, col, conn)
        values.append(value)
    return instance(model, dict(zip(attnames, values, strict=True)))


def money(value: Any) -> Decimal:
    """A money column as read by a raw cursor (PostgreSQL: Decimal; SQLite: int/float/str) as Decimal cents."""
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value)).quantize(_CENT)
