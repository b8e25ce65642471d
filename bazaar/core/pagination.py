"""The API's pagination conventions.

- ``limit``/``offset`` with a maximum limit and the total count (:func:`paginate`): for lists that stay small.
- Keyset pages (:func:`keyset_page`) for lists that grow to millions of rows: ``cursor`` (opaque, from the previous
  page's ``next_cursor``) continues after the last row in the list's order, one index range read whatever the depth;
  ``offset`` stays accepted up to :data:`OFFSET_WINDOW` (cheap there) and beyond answers 422 ``offset_too_deep``
  pointing at the cursor; the count is exact up to :data:`COUNT_EXACT_UPTO` and the planner's estimate above it
  (``count_exact`` says which), so no request counts a whole large table (and on a large table, a query the
  planner expects to match far more than the bound is not counted at all).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Field as DjangoField
from django.db.models import Model, Q, QuerySet
from ninja import Field, Schema

from bazaar.core.cursors import encode_keyset
from bazaar.core.errors import ValidationFailed
from bazaar.core.schemas import MAX_OFFSET, OFFSET_WINDOW, CheckedIn

T = TypeVar("T")


class PageParams(CheckedIn):
    limit: int = Field(default=None, ge=1, description="Items per page (max API_MAX_LIMIT).")  # type: ignore[assignment]
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


def clamp(limit: int | None, offset: int | None) -> tuple[int, int]:
    """Validate and default ``limit``/``offset``; a limit over the maximum is a 422, not silently cut."""
    lim = settings.API_DEFAULT_LIMIT if limit is None else int(limit)
    off = 0 if offset is None else int(offset)
    if lim < 1 or lim > settings.API_MAX_LIMIT:
        raise ValidationFailed(
            f"limit must be between 1 and {settings.API_MAX_LIMIT}.",
            code="invalid_limit",
            details={"max_limit": settings.API_MAX_LIMIT},
        )
    if off < 0:
        raise ValidationFailed("offset must be 0 or more.", code="invalid_offset")
    return lim, off


class Page(Schema, Generic[T]):
    count: int
    limit: int
    offset: int
    items: list[T]


def paginate(qs: QuerySet[Any], limit: int | None, offset: int | None) -> dict[str, Any]:
    lim, off = clamp(limit, offset)
    return {"count": qs.count(), "limit": lim, "offset": off, "items": list(qs[off : off + lim])}


#: Counts are exact up to this many rows (one bounded index read), estimated by the planner above it.
COUNT_EXACT_UPTO = 10_000
#: On a table that holds more than COUNT_EXACT_UPTO rows, a query the planner expects to match more than this many
#: rows is answered with the estimate straight away: counting the first COUNT_EXACT_UPTO + 1 of them would cost
#: every request on a large list a 10,000-row read for a number the answer then discards.
ESTIMATE_FIRST_ABOVE = 10 * COUNT_EXACT_UPTO
#: How long a process trusts its reading of a table's size (``pg_class.reltuples``, kept by ANALYZE/autovacuum).
TABLE_ROWS_TTL_S = 60.0

_table_rows_seen: dict[tuple[str, str], tuple[float, float]] = {}


def _table_rows(alias: str, table: str) -> float:
    """The planner's row count of ``table`` (-1 when never analyzed), re-read at most every TABLE_ROWS_TTL_S."""
    now = time.monotonic()
    seen = _table_rows_seen.get((alias, table))
    if seen is not None and now - seen[0] < TABLE_ROWS_TTL_S:
        return seen[1]
    with connections[alias].cursor() as cur:
        cur.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cur.fetchone()
    rows = float(row[0]) if row and row[0] is not None else -1.0
    _table_rows_seen[(alias, table)] = (now, rows)
    return rows


def _estimate(qs: QuerySet[Any]) -> int:
    query, params = qs.values("pk").query.sql_with_params()
    with connections[qs.db].cursor() as cur:
        cur.execute("EXPLAIN (FORMAT JSON) " + query, params)
        plan = cur.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def bounded_count(qs: QuerySet[Any]) -> tuple[int, bool]:
    """``(count, exact)``: exact when at most :data:`COUNT_EXACT_UPTO` rows match (``COUNT(*)`` over a
    ``LIMIT``-ed subquery), else PostgreSQL's row estimate for the same query (never below the bound). On a large
    table a query estimated above :data:`ESTIMATE_FIRST_ABOVE` skips the bounded count. Other databases (the
    embedded SQLite) count exactly."""
    qs = qs.order_by()
    postgres = connections[qs.db].vendor == "postgresql"
    estimate: int | None = None
    if postgres and _table_rows(qs.db, qs.model._meta.db_table) > COUNT_EXACT_UPTO:
        estimate = _estimate(qs)
        if estimate > ESTIMATE_FIRST_ABOVE:
            return estimate, False
    n = qs[: COUNT_EXACT_UPTO + 1].count()
    if n <= COUNT_EXACT_UPTO:
        return n, True
    if not postgres:
        return qs.count(), True
    return max(_estimate(qs) if estimate is None else estimate, COUNT_EXACT_UPTO + 1), False


def _invalid_cursor() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is not valid for this list and order: pass next_cursor from the previous page unchanged.",
        code="invalid_cursor",
    )


def _decode_keyset(model: type[Model], cursor: str, order_key: str, fields: Sequence[str]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise _invalid_cursor() from exc
    if not isinstance(data, list) or len(data) != len(fields) + 1 or data[0] != order_key:
        raise _invalid_cursor()
    values = []
    for name, value in zip(fields, data[1:], strict=True):
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise _invalid_cursor()
        field = model._meta.get_field(name)
        if not isinstance(field, DjangoField):
            raise _invalid_cursor()
        try:
            values.append(field.to_python(value))
        except (ValidationError, ValueError, TypeError) as exc:
            raise _invalid_cursor() from exc
    return values


def _after(ordering: Sequence[str], values: Sequence[Any]) -> Q:
    """Rows strictly after ``values`` in ``ordering`` (``-`` for descending): (a > x) or (a = x and b > y) …"""
    after = Q(pk__in=[])
    equal = Q()
    for spec, value in zip(ordering, values, strict=True):
        name = spec.lstrip("-")
        step = Q(**{f"{name}__lt" if spec.startswith("-") else f"{name}__gt": value})
        after |= equal & step
        equal &= Q(**{name: value})
    return after


def keyset_page(
    qs: QuerySet[Any],
    *,
    ordering: Sequence[str],
    order_key: str,
    limit: int | None,
    offset: int | None,
    cursor: str | None,
) -> dict[str, Any]:
    """One page of ``qs`` in ``ordering`` (its last field unique, so rows have a total order):
    ``{"count", "count_exact", "limit", "offset", "next_cursor", "items"}`` with model instances as items.

    With ``cursor`` it continues after the row it names (one range read on the ordering's index); ``offset`` works
    up to :data:`OFFSET_WINDOW`. Raises ValidationFailed: ``invalid_limit``, ``invalid_offset``, ``invalid_cursor``,
    ``offset_too_deep``, ``cursor_with_offset``. Takes no locks."""
    lim, off = clamp(limit, offset)
    if off > OFFSET_WINDOW:
        raise ValidationFailed(
            f"offset can be at most {OFFSET_WINDOW}; page deeper with cursor=<next_cursor of the previous page>.",
            code="offset_too_deep",
            details={"max_offset": OFFSET_WINDOW},
        )
    fields = [spec.lstrip("-") for spec in ordering]
    count, exact = bounded_count(qs)
    page = qs.order_by(*ordering)
    if cursor:
        if off:
            raise ValidationFailed("Use either cursor or offset, not both.", code="cursor_with_offset")
        page = page.filter(_after(ordering, _decode_keyset(qs.model, cursor, order_key, fields)))
    if off:
        # A deferred join: skip the first ``off`` rows reading only the ordering's unique last field (on its index,
        # an index-only scan), then read the page's rows, and their joins, for those keys alone. Skipping whole rows
        # fetched every skipped row and joined it first (offset 7,000 of 1M pokemon: 7.5 ms, deferred 1.2 ms).
        unique = fields[-1]
        keys = page.values_list(unique, flat=True)[off : off + lim + 1]
        rows = list(qs.filter(**{f"{unique}__in": keys}).order_by(*ordering))
    else:
        rows = list(page[: lim + 1])
    more = len(rows) > lim
    rows = rows[:lim]
    last = rows[-1] if more else None
    return {
        "count": count,
        "count_exact": exact,
        "limit": lim,
        "offset": off,
        "next_cursor": encode_keyset(order_key, [getattr(last, f) for f in fields])
        if last is not None
        else None,
        "items": rows,
    }
