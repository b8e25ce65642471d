"""Entry writes: set (with CAS and TTL), delete, atomic batches, imports and the purge of dead rows.

Every write is one conditional SQL statement (``INSERT … ON CONFLICT DO UPDATE … RETURNING`` or
``UPDATE … WHERE version = … RETURNING``), so compare-and-swap is decided by the database under the row lock it
takes anyway, with no read-modify-write window. The cached copy of the entry is invalidated inside the same
transaction; core.cache bumps its generation only after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from bazaar.core import sql
from bazaar.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from bazaar.kvstore import conf
from bazaar.kvstore.cache import invalidate_entry
from bazaar.kvstore.models import Entry, Tenant
from bazaar.kvstore.services.validation import clean_if_version, clean_key, encode_value, expiry


@dataclass(frozen=True)
class WriteResult:
    key: str
    version: int
    updated_at: datetime
    expires_at: datetime | None
    op: str = "set"


@dataclass(frozen=True)
class SetOp:
    key: str
    value_json: str
    expires_at: datetime | None
    if_version: int | None


@dataclass(frozen=True)
class DeleteOp:
    key: str
    if_version: int | None


def _db(dt: datetime | None) -> Any:
    return connection.ops.adapt_datetimefield_value(dt)


def _current_version(tenant_id: int, key: str, now: datetime) -> int:
    """The live version of ``key`` (0 when it does not exist, expired or was deleted)."""
    row = (
        Entry.objects.live(now).filter(tenant_id=tenant_id, key=key).values_list("version", flat=True).first()
    )
    return int(row or 0)


def _conflict(tenant_id: int, key: str, now: datetime, expected: int | None, index: int | None) -> Conflict:
    current = _current_version(tenant_id, key, now)
    details: dict[str, Any] = {"key": key, "expected_version": expected, "current_version": current}
    if index is not None:
        details["index"] = index
    return Conflict(
        f"Version conflict on {key!r}: expected {expected}, current {current}.",
        code="version_conflict",
        details=details,
    )


# The statements name their tables literally (checked by a test against the models' db_table).
_UPSERT = """INSERT INTO kvstore_entry (tenant_id, "key", value, version, created_at, updated_at, expires_at)
VALUES (%s, %s, %s, (SELECT version_floor + 1 FROM kvstore_tenant WHERE id = %s), %s, %s, %s)
ON CONFLICT (tenant_id, "key") DO UPDATE SET
  value = excluded.value,
  version = kvstore_entry.version + 1,
  created_at = CASE WHEN kvstore_entry.expires_at IS NOT NULL AND kvstore_entry.expires_at <= %s
               THEN excluded.created_at ELSE kvstore_entry.created_at END,
  updated_at = excluded.updated_at,
  expires_at = excluded.expires_at"""
_ONLY_DEAD = " WHERE kvstore_entry.expires_at IS NOT NULL AND kvstore_entry.expires_at <= %s"
_RETURNING = " RETURNING version"
_CAS = """UPDATE kvstore_entry SET value = %s, version = version + 1, updated_at = %s, expires_at = %s
WHERE tenant_id = %s AND "key" = %s AND version = %s AND (expires_at IS NULL OR expires_at > %s)
RETURNING version"""
_DELETE = """UPDATE kvstore_entry SET value = 'null', version = version + 1, updated_at = %s, expires_at = %s
WHERE tenant_id = %s AND "key" = %s AND (expires_at IS NULL OR expires_at > %s)"""
_AND_VERSION = " AND version = %s"


def _apply_set(tenant_id: int, op: SetOp, now: datetime, index: int | None = None) -> int:
    """Run one set; return the new version or raise Conflict. Caller owns the transaction."""
    n = _db(now)
    with sql.cursor() as cur:  # prepared once per connection (PostgreSQL): a PUT is this one statement
        if op.if_version is None or op.if_version == 0:
            # Upsert. A dead row (expired or deleted) is revived with version + 1, so versions never repeat; a new
            # row starts above the tenant's floor (the highest version of a purged row). With if_version=0 only a
            # missing or dead row may be written: the unique (tenant, key) constraint decides a race of creators.
            params: list[Any] = [tenant_id, op.key, op.value_json, tenant_id, n, n, _db(op.expires_at), n]
            statement = _UPSERT
            if op.if_version == 0:
                statement += _ONLY_DEAD
                params.append(n)
            cur.execute(statement + _RETURNING, params)
        else:
            cur.execute(_CAS, [op.value_json, n, _db(op.expires_at), tenant_id, op.key, op.if_version, n])
        row = cur.fetchone()
    if row is None:
        raise _conflict(tenant_id, op.key, now, op.if_version, index)
    invalidate_entry(tenant_id, op.key)
    return int(row[0])


def _apply_delete(tenant_id: int, op: DeleteOp, now: datetime, index: int | None = None) -> int:
    """Expire the row now (a tombstone that keeps its version until the purge); return the tombstone's version."""
    n = _db(now)
    statement = _DELETE
    params: list[Any] = [n, n, tenant_id, op.key, n]
    if op.if_version is not None:
        statement += _AND_VERSION
        params.append(op.if_version)
    with sql.cursor() as cur:
        cur.execute(statement + _RETURNING, params)
        row = cur.fetchone()
    if row is None:
        if op.if_version is not None:
            raise _conflict(tenant_id, op.key, now, op.if_version, index)
        details: dict[str, Any] = {"key": op.key}
        if index is not None:
            details["index"] = index
        raise NotFound(f"No key {op.key!r}.", code="key_not_found", details=details)
    invalidate_entry(tenant_id, op.key)
    return int(row[0])


def make_set(key: Any, value: Any, ttl: Any, if_version: Any, now: datetime) -> SetOp:
    return SetOp(clean_key(key), encode_value(value), expiry(ttl, now), clean_if_version(if_version))


def make_delete(key: Any, if_version: Any) -> DeleteOp:
    ifv = clean_if_version(if_version)
    if ifv == 0:
        raise ValidationFailed("if_version for a delete must be 1 or more.", code="invalid_if_version")
    return DeleteOp(clean_key(key), ifv)


def batch_ops(items: Sequence[dict[str, Any]], *, now: datetime) -> list[SetOp | DeleteOp]:
    """Validate raw batch items (``{"op": "set"|"delete", "key", "value"?, "ttl"?, "if_version"?}``) into ops.

    Raises ValidationFailed with ``details.index`` for the first bad item (``missing_value``, ``invalid_op``, or
    a key/value/TTL rule); PayloadTooLarge for a value over the limit. Writes nothing.
    """
    ops: list[SetOp | DeleteOp] = []
    for i, item in enumerate(items):
        try:
            if item.get("op") == "set":
                if "value" not in item:
                    raise ValidationFailed("A set needs a value.", code="missing_value")
                ops.append(
                    make_set(item.get("key"), item["value"], item.get("ttl"), item.get("if_version"), now)
                )
            elif item.get("op") == "delete":
                if "value" in item or item.get("ttl") is not None:
                    raise ValidationFailed("A delete takes no value or ttl.", code="invalid_op")
                ops.append(make_delete(item.get("key"), item.get("if_version")))
            else:
                raise ValidationFailed('op must be "set" or "delete".', code="invalid_op")
        except DomainError as exc:
            exc.details = {**(exc.details if isinstance(exc.details, dict) else {}), "index": i}
            raise
    return ops


def entry_set(
    *, tenant_id: int, key: str, value: Any, ttl: int | None = None, if_version: int | None = None
) -> WriteResult:
    """Set ``key`` to ``value`` (any JSON) with an optional TTL; with ``if_version`` only if the live version is
    that (0: only if the key does not exist). Every write raises the version by one.

    Raises ValidationFailed (key, TTL, if_version), PayloadTooLarge (value over KVSTORE_MAX_VALUE_BYTES) or
    Conflict ``version_conflict`` (details carry ``current_version``); nothing is written then. One statement
    (its own transaction): the row lock it takes serializes concurrent writers of the key. The cached entry is
    invalidated after commit.
    """
    now = timezone.now()
    op = make_set(key, value, ttl, if_version, now)
    # One statement is its own transaction in autocommit: no BEGIN/COMMIT round trips on the hot write path.
    # Inside a caller's transaction it joins that one, and the invalidation waits for its commit.
    version = _apply_set(tenant_id, op, now)
    return WriteResult(op.key, version, now, op.expires_at)


def entry_delete(*, tenant_id: int, key: str, if_version: int | None = None) -> WriteResult:
    """Delete ``key`` (optionally only at version ``if_version``). The row is expired at once and purged later,
    keeping its version so a re-created key continues above it.

    Raises NotFound ``key_not_found`` (no live key), Conflict ``version_conflict`` (if_version does not match)
    or ValidationFailed; nothing is written then. One statement; cache invalidated after commit.
    """
    now = timezone.now()
    op = make_delete(key, if_version)
    version = _apply_delete(tenant_id, op, now)  # one statement: its own transaction (see entry_set)
    return WriteResult(op.key, version, now, now, op="delete")


def batch_apply(*, tenant_id: int, ops: Sequence[SetOp | DeleteOp], now: datetime) -> list[WriteResult]:
    """Apply set/delete operations atomically: all of them, or none (the first failure rolls everything back).

    Raises ValidationFailed (empty, too many, a key twice), and whatever one operation raises (Conflict,
    NotFound) with ``details.index`` naming it. Locks the existing rows with ``select_for_update`` in key order
    and applies the operations in key order, so two batches over the same keys cannot deadlock.
    """
    if not ops:
        raise ValidationFailed("A batch needs at least one operation.", code="empty_batch")
    limit = conf.max_batch_ops()
    if len(ops) > limit:
        raise ValidationFailed(
            f"A batch has at most {limit} operations.", code="batch_too_large", details={"limit": limit}
        )
    seen: dict[str, int] = {}
    for i, op in enumerate(ops):
        if op.key in seen:
            raise ValidationFailed(
                f"Key {op.key!r} appears twice in the batch.",
                code="duplicate_key",
                details={"key": op.key, "index": i, "first_index": seen[op.key]},
            )
        seen[op.key] = i
    results: list[WriteResult | None] = [None] * len(ops)
    with transaction.atomic():
        list(
            Entry.objects.select_for_update()
            .filter(tenant_id=tenant_id, key__in=sorted(seen))
            .order_by("key")
            .values_list("id", flat=True)
        )
        for i in sorted(range(len(ops)), key=lambda j: ops[j].key):
            op = ops[i]
            if isinstance(op, SetOp):
                version = _apply_set(tenant_id, op, now, index=i)
                results[i] = WriteResult(op.key, version, now, op.expires_at)
            else:
                version = _apply_delete(tenant_id, op, now, index=i)
                results[i] = WriteResult(op.key, version, now, now, op="delete")
    return [r for r in results if r is not None]


def entries_purge_expired(*, now: datetime | None = None, batch: int | None = None) -> int:
    """Delete dead rows (expired or deleted at or before ``now``) in batches; return how many.

    Versions must never repeat, so each batch first raises its tenants' ``version_floor`` to the highest version
    it is about to delete and commits that (tenants updated in pk order), and only then deletes, in a second
    short transaction, the rows that are still dead and not above that floor (a row revived meanwhile is kept;
    one that died again with a higher version waits for the next batch). A key created after the first commit
    starts above the floor; the rows are locked only by the DELETE itself. Dead rows need no cache
    invalidation: cached copies carry their expiry, and deletes invalidated when they happened.
    """
    now = now or timezone.now()
    size = batch or conf.purge_batch()
    total = 0
    after = 0
    while True:
        rows = list(
            Entry.objects.filter(expires_at__lte=now, pk__gt=after)
            .order_by("pk")
            .values_list("pk", "tenant_id", "version")[:size]
        )
        if not rows:
            return total
        after = rows[-1][0]
        floors: dict[int, int] = {}
        ids: dict[int, list[int]] = {}
        for pk, tenant_id, version in rows:
            floors[tenant_id] = max(floors.get(tenant_id, 0), version)
            ids.setdefault(tenant_id, []).append(pk)
        with transaction.atomic():
            for tenant_id in sorted(floors):
                Tenant.objects.filter(pk=tenant_id).update(
                    version_floor=Greatest(F("version_floor"), Value(floors[tenant_id]))
                )
        with transaction.atomic():
            for tenant_id in sorted(ids):
                deleted, _ = Entry.objects.filter(
                    tenant_id=tenant_id,
                    pk__in=ids[tenant_id],
                    version__lte=floors[tenant_id],
                    expires_at__lte=now,
                ).delete()
                total += deleted
        if len(rows) < size:
            return total
