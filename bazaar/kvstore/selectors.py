"""Kvstore reads: one entry (through the cache), keyset-paginated listings, exports, tenants and keys."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from bazaar.core import sql
from bazaar.core.errors import DomainError, NotFound, ValidationFailed
from bazaar.core.schemas import text_problem
from bazaar.kvstore import conf
from bazaar.kvstore.cache import ABSENT, VARIANT, entry_scope, entry_surface, iso, pack, unpack
from bazaar.kvstore.models import Change, Entry, Tenant, TenantApiKey
from bazaar.kvstore.services.validation import clean_key

_FIELDS = ("key", "value", "version", "created_at", "updated_at", "expires_at", "mod_revision")


@dataclass(frozen=True)
class EntryRead:
    version: int
    body: bytes
    hit: bool
    revision: int = 0


@cache
def _stored_sql(table: str) -> str:
    return (
        f'SELECT "key", value, version, created_at, updated_at, expires_at, mod_revision FROM {table} '  # noqa: S608
        'WHERE tenant_id = %s AND "key" = %s AND (expires_at IS NULL OR expires_at > %s)'
    )


def _aware(dt: datetime) -> datetime:
    # PostgreSQL answers aware datetimes; SQLite naive UTC ones (Django stores UTC there).
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def entry_stored(*, tenant_id: int, key: str, now: datetime) -> bytes:
    """The stored form (``kvstore.cache.pack``) of the live entry at ``now``, or ``ABSENT``: one prepared,
    indexed statement (the unique (tenant, key) index), no ORM query compilation. Used on every cache miss, by
    the API view and by the fast path alike."""
    row = sql.fetchone(
        _stored_sql(sql.table(Entry)), [tenant_id, key, connection.ops.adapt_datetimefield_value(now)]
    )
    return ABSENT if row is None else _stored_form(row)


def _stored_form(row: tuple[Any, ...]) -> bytes:
    """The stored form of an entry row (the columns of ``_stored_sql``)."""
    k, value, version, created_at, updated_at, expires_at, revision = row
    return pack(
        key=k,
        value_json=value,
        version=version,
        created_at=_aware(created_at),
        updated_at=_aware(updated_at),
        expires_at=None if expires_at is None else _aware(expires_at),
        revision=revision,
    )


@cache
def _checked_sql(keys: str, table: str) -> str:
    return (
        'SELECT e."key", e.value, e.version, e.created_at, e.updated_at, e.expires_at, e.mod_revision '  # noqa: S608
        f'FROM {keys} k LEFT JOIN {table} e ON e.tenant_id = k.tenant_id AND e."key" = %s '
        "AND (e.expires_at IS NULL OR e.expires_at > %s) "
        "WHERE k.digest = %s AND k.tenant_id = %s AND k.revoked_at IS NULL"
    )


def entry_stored_checked(*, digest: str, tenant_id: int, key: str, now: datetime) -> bytes | None:
    """:func:`entry_stored` and the API key's validity in the same statement: the stored form (or ``ABSENT``) if
    the key with ``digest`` is ``tenant_id``'s and not revoked, else None. For a read that skips the cache lookup
    (``core.cache.skip_lookup``), which is where the fast path otherwise checks the key's validity flag."""
    row = sql.fetchone(
        _checked_sql(sql.table(TenantApiKey), sql.table(Entry)),
        [key, connection.ops.adapt_datetimefield_value(now), digest, tenant_id],
    )
    if row is None:
        return None
    return ABSENT if row[0] is None else _stored_form(row)


def entry_get(*, tenant_id: int, key: str) -> EntryRead:
    """One live entry of the tenant as ready JSON bytes, through core.cache (one round trip on a hit).

    Raises NotFound (``key_not_found``) when the key does not exist, was deleted or has expired, including an
    entry that expired after it was cached (the stored form carries the expiry). "No such key" is cached too,
    so a storm of 404s costs one query. ValidationFailed for a malformed key. Takes no locks.
    """
    key = clean_key(key)
    now = timezone.now()
    cached = entry_surface().get_or_build(
        entry_scope(tenant_id, key),
        VARIANT,
        lambda: entry_stored(tenant_id=tenant_id, key=key, now=now),
        ttl=conf.cache_ttl(),
    )
    found = unpack(cached.body, now.timestamp() * 1000)
    if found is None:
        raise NotFound(f"No key {key!r}.", code="key_not_found", details={"key": key})
    return EntryRead(version=found[0], body=found[1], hit=cached.hit, revision=int(found[2]))


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        key = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key = ""
    if not key or text_problem(key) is not None:  # a cursor is only ever made from a stored key
        raise ValidationFailed("The cursor is not valid.", code="invalid_cursor")
    return key


def _prefix_upper(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix`` (code point order), if any."""
    for i in range(len(prefix) - 1, -1, -1):
        if ord(prefix[i]) < 0x10FFFF:
            return prefix[:i] + chr(ord(prefix[i]) + 1)
    return None


def _live_range(tenant_id: int, now: datetime, prefix: str, after: str | None) -> QuerySet[Entry]:
    qs = Entry.objects.live(now).filter(tenant_id=tenant_id)
    if prefix:
        # A key range the (tenant, key) index answers directly (keys compare bytewise: "C" collation on
        # PostgreSQL, BINARY on SQLite); startswith keeps it exact.
        qs = qs.filter(key__gte=prefix, key__startswith=prefix)
        upper = _prefix_upper(prefix)
        if upper is not None:
            qs = qs.filter(key__lt=upper)
    if after is not None:
        qs = qs.filter(key__gt=after)
    return qs.order_by("key")


def _item(row: tuple[object, ...], now_ms: float) -> bytes | None:
    k, value, version, created_at, updated_at, expires_at, revision = row
    stored = pack(
        key=str(k),
        value_json=str(value),
        version=int(version),  # type: ignore[call-overload]
        created_at=created_at,  # type: ignore[arg-type]
        updated_at=updated_at,  # type: ignore[arg-type]
        expires_at=expires_at,  # type: ignore[arg-type]
        revision=int(revision),  # type: ignore[call-overload]
    )
    found = unpack(stored, now_ms)
    return None if found is None else found[1]


def entry_list(
    *, tenant_id: int, prefix: str = "", limit: int | None = None, cursor: str | None = None
) -> bytes:
    """A page of the tenant's live entries in key order, as JSON bytes
    ``{"items": [...], "next_cursor": …, "revision": R}``.

    ``revision`` is the tenant's revision read *before* the page: the page reflects at least every write up to
    it, so a watch from ``R`` misses nothing (it may repeat a change the page already shows).

    Keyset pagination on the unique (tenant, key) index: ``key > cursor ORDER BY key LIMIT n+1``, never an
    offset or a full scan. The cursor is the opaque base64 of the page's last key; ``next_cursor`` is null on
    the last page. Raises ValidationFailed (``invalid_limit``, ``invalid_cursor``). Takes no locks.
    """
    max_limit = conf.max_list_limit()
    lim = 100 if limit is None else limit
    if lim < 1 or lim > max_limit:
        raise ValidationFailed(
            f"limit must be between 1 and {max_limit}.",
            code="invalid_limit",
            details={"max_limit": max_limit},
        )
    after = decode_cursor(cursor) if cursor else None
    revision = tenant_revision(tenant_id=tenant_id)
    now = timezone.now()
    rows = list(_live_range(tenant_id, now, prefix, after).values_list(*_FIELDS)[: lim + 1])
    more = len(rows) > lim
    rows = rows[:lim]
    now_ms = now.timestamp() * 1000
    items = [b for b in (_item(r, now_ms) for r in rows) if b is not None]
    next_cursor = encode_cursor(str(rows[-1][0])) if more and rows else None
    return b'{"items":[%s],"next_cursor":%s,"revision":%d}' % (
        b",".join(items),
        json.dumps(next_cursor).encode(),
        revision,
    )


def tenant_revision(*, tenant_id: int) -> int:
    """The tenant's current store revision (0 before its first write). Takes no locks."""
    return int(Tenant.objects.filter(pk=tenant_id).values_list("revision", flat=True).first() or 0)


def entries_export(*, tenant_id: int, prefix: str = "", chunk: int = 1000) -> Iterator[str]:
    """Every live entry of the tenant as JSON lines ``{"key", "value", "version", "ttl"?}`` in key order.

    Reads in keyset chunks (never the whole table at once); each chunk is a consistent snapshot, the export as a
    whole is not (it is not one transaction, so it never holds a long snapshot open). Takes no locks.
    """
    after: str | None = None
    while True:
        now = timezone.now()
        rows = list(
            _live_range(tenant_id, now, prefix, after).values_list("key", "value", "version", "expires_at")[
                :chunk
            ]
        )
        for key, value, version, expires_at in rows:
            line = f'{{"key":{json.dumps(key, ensure_ascii=False)},"value":{value},"version":{version}'
            if expires_at is not None:
                left = max(1, int((expires_at - now).total_seconds() + 0.999))
                line += f',"ttl":{left}'
            yield line + "}"
        if len(rows) < chunk:
            return
        after = rows[-1][0]


def tenant_by_slug(slug: str) -> Tenant:
    """The tenant named ``slug``. Raises NotFound (``tenant_not_found``)."""
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise NotFound(f"No tenant {slug!r}.", code="tenant_not_found")
    return tenant


def tenant_list() -> QuerySet[Tenant]:
    """All tenants by slug."""
    return Tenant.objects.order_by("slug")


def apikey_list(*, tenant_id: int) -> QuerySet[TenantApiKey]:
    """A tenant's API keys, newest first (digests only: secrets are never stored)."""
    return TenantApiKey.objects.filter(tenant_id=tenant_id).order_by("-created_at", "-id")


# --- the change log: a key's history and a watch's changes -----------------------------------------------


class RevisionCompacted(DomainError):
    """410: the changes after the asked revision were compacted away; resume from ``details.compacted_revision``."""

    status: ClassVar[int] = 410
    code: ClassVar[str] = "revision_compacted"


def _page_limit(limit: int | None, default: int = 100) -> int:
    top = conf.max_history_limit()
    lim = default if limit is None else limit
    if lim < 1 or lim > top:
        raise ValidationFailed(
            f"limit must be between 1 and {top}.", code="invalid_limit", details={"max_limit": top}
        )
    return lim


def _change_out(row: tuple[Any, ...]) -> dict[str, Any]:
    revision, key, op, value, version, at = row
    return {
        "revision": revision,
        "key": key,
        "op": op,
        "value": None if value is None else json.loads(value),
        "version": version,
        "at": iso(_aware(at)),
    }


_CHANGE_FIELDS = ("revision", "key", "op", "value", "version", "at")


def key_history(
    *, tenant_id: int, key: str, limit: int | None = None, before: int | None = None
) -> dict[str, Any]:
    """A key's retained changes, newest first: ``{"key", "items", "next_before", "revision", "compacted_revision"}``.

    Paged by revision: pass ``next_before`` as ``before`` for older changes (null when there are none).
    Changes at or below ``compacted_revision`` were compacted by the tenant's retention. Raises
    ValidationFailed (key, ``invalid_limit``, ``invalid_revision``). Takes no locks.
    """
    key = clean_key(key)
    lim = _page_limit(limit)
    if before is not None and before < 1:
        raise ValidationFailed("before must be 1 or more.", code="invalid_revision")
    tenant = Tenant.objects.values_list("revision", "compacted_revision").get(pk=tenant_id)
    qs = Change.objects.filter(tenant_id=tenant_id, key=key)
    if before is not None:
        qs = qs.filter(revision__lt=before)
    rows = list(qs.order_by("-revision", "-id").values_list(*_CHANGE_FIELDS)[: lim + 1])
    more = len(rows) > lim
    rows = rows[:lim]
    compacted = Tenant.objects.values_list("compacted_revision", flat=True).get(pk=tenant_id)  # after reading
    return {
        "key": key,
        "items": [_change_out(r) for r in rows],
        "next_before": rows[-1][0] if more and rows else None,
        "revision": tenant[0],
        "compacted_revision": compacted,
    }


def changes_since(
    *, tenant_id: int, since: int, prefix: str = "", limit: int | None = None
) -> dict[str, Any]:
    """The tenant's changes after revision ``since`` (keys starting with ``prefix``), in revision order:
    ``{"items", "revision"}`` where ``revision`` is where the next call resumes (``since=revision``).

    Complete by construction: the tenant's revision R is read first, and every change at or below a committed R
    is committed (writers hold the tenant row from their bump to their commit, so revisions commit in order);
    the page is the changes in (since, R]. A page cut by ``limit`` ends at a whole revision (a batch is never
    split; one revision bigger than the page comes whole). Raises RevisionCompacted (410, ``details.compacted_revision``
    is the oldest revision a watch can resume from) when changes after ``since`` were compacted — checked
    after reading, so a concurrent compaction cannot leave a silent hole. ValidationFailed for a negative
    ``since`` or a bad limit. Takes no locks.
    """
    if since < 0:
        raise ValidationFailed("since must be 0 or more.", code="invalid_revision")
    lim = _page_limit(limit, default=conf.max_history_limit())
    current = tenant_revision(tenant_id=tenant_id)
    qs = Change.objects.filter(tenant_id=tenant_id, revision__gt=since, revision__lte=current)
    if prefix:
        qs = qs.filter(key__startswith=prefix)
    rows = list(qs.order_by("revision", "id").values_list(*_CHANGE_FIELDS)[: lim + 1])
    upto = max(since, current)
    if len(rows) > lim:
        last = rows[lim][0]  # the first revision left out
        whole = [r for r in rows[:lim] if r[0] < last]
        # One revision bigger than the page (an import) is delivered whole: a watch must never split a revision.
        rows = whole or list(qs.filter(revision=last).order_by("id").values_list(*_CHANGE_FIELDS))
        upto = rows[-1][0]
    compacted = Tenant.objects.values_list("compacted_revision", flat=True).get(pk=tenant_id)
    if since < compacted:
        raise RevisionCompacted(
            f"Changes up to revision {compacted} were compacted; watch from {compacted} or later.",
            details={"since": since, "compacted_revision": compacted},
        )
    return {"items": [_change_out(r) for r in rows], "revision": upto}
