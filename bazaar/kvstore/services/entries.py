"""Entry writes: set (with CAS and TTL), delete, atomic batches, imports and the purge of dead rows.

Every write of an entry is one conditional SQL statement (``INSERT … ON CONFLICT DO UPDATE … RETURNING`` or
``UPDATE … WHERE version = … RETURNING``), so compare-and-swap is decided by the database under the row lock it
takes anyway, with no read-modify-write window. The cached copy of the entry is invalidated inside the same
transaction; core.cache bumps its generation only after the commit.

Revisions: every committed write raises the tenant's ``revision`` by one (a batch, an import or a txn is one
revision) and records a :class:`~bazaar.kvstore.models.Change` row per key in the same transaction. The tenant row
is always locked first (``UPDATE kvstore_tenant … RETURNING revision``), then entries in key order, so writers of a
tenant commit in revision order: a reader that sees revision N committed sees every revision below it too — what a
watch resuming from a revision relies on. A plain PUT on PostgreSQL stays one statement (the tenant bump, the
upsert and the change row in one data-modifying ``WITH``); a write that may be refused (CAS, delete) runs the bump
and the write in one transaction, so a refusal rolls the bump back and revisions have no gaps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from bazaar.core import cache, sql
from bazaar.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from bazaar.core.groupcommit import GroupCommit
from bazaar.kvstore import conf
from bazaar.kvstore.cache import entry_scope, invalidate_entry
from bazaar.kvstore.models import Change, Entry, Tenant
from bazaar.kvstore.services.validation import Limits, clean_if_version, clean_key, encode_value, expiry


@dataclass(frozen=True)
class WriteResult:
    key: str
    version: int
    updated_at: datetime
    expires_at: datetime | None
    op: str = "set"
    revision: int = 0


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


# Table names come from the models (``sql.table``: quoted for the backend), like every raw statement in Bazaar.
_E, _T, _C = sql.table(Entry), sql.table(Tenant), sql.table(Change)
_ENTRY_INSERT = f"""INSERT INTO {_E}
  (tenant_id, "key", value, version, created_at, updated_at, expires_at, mod_revision)
"""
# An upsert revives a dead row with version + 1 and keeps a live row's created_at (one parameter: now).
_ON_CONFLICT = f"""ON CONFLICT (tenant_id, "key") DO UPDATE SET
  value = excluded.value,
  version = {_E}.version + 1,
  created_at = CASE WHEN {_E}.expires_at IS NOT NULL AND {_E}.expires_at <= %s
               THEN excluded.created_at ELSE {_E}.created_at END,
  updated_at = excluded.updated_at,
  expires_at = excluded.expires_at,
  mod_revision = excluded.mod_revision"""
_UPSERT = "".join(
    [
        _ENTRY_INSERT,
        f"VALUES (%s, %s, %s, (SELECT version_floor + 1 FROM {_T} WHERE id = %s), %s, %s, %s, {{revision}})\n",  # noqa: S608
        _ON_CONFLICT,
    ]
)
_ONLY_DEAD = f" WHERE {_E}.expires_at IS NOT NULL AND {_E}.expires_at <= %s"
_RETURNING = " RETURNING version"
_CAS = f"""UPDATE {_E} SET value = %s, version = version + 1, updated_at = %s, expires_at = %s,
  mod_revision = %s
WHERE tenant_id = %s AND "key" = %s AND version = %s AND (expires_at IS NULL OR expires_at > %s)"""  # noqa: S608
_DELETE = f"""UPDATE {_E} SET value = 'null', version = version + 1, updated_at = %s, expires_at = %s,
  mod_revision = %s
WHERE tenant_id = %s AND "key" = %s AND (expires_at IS NULL OR expires_at > %s)"""  # noqa: S608
_AND_VERSION = " AND version = %s"
_BUMP = f"UPDATE {_T} SET revision = revision + 1 WHERE id = %s RETURNING revision"  # noqa: S608
_CHANGE = f'INSERT INTO {_C} (tenant_id, revision, "key", op, value, version, at) '
# PostgreSQL: the entry write and its change row in one round trip (a data-modifying WITH).
_WITH_CHANGE = (
    "WITH e AS ({write} RETURNING version) " + _CHANGE + "SELECT %s, %s, %s, %s, %s, e.version, %s FROM e"  # noqa: S608
)
# PostgreSQL, a plain PUT: the revision bump, the upsert and the change row in one statement.
_PUT_ONE = "".join(
    [
        f"WITH t AS ({_BUMP}), e AS (",
        _UPSERT.format(revision="(SELECT revision FROM t)"),
        " RETURNING version, mod_revision) ",
        _CHANGE,
        "SELECT %s, e.mod_revision, %s, 'set', %s, e.version, %s FROM e RETURNING version, revision",
    ]
)


# PostgreSQL, a group of plain PUTs of one tenant (distinct keys), as the concurrent writers of this process hand
# them to the group's leader: one revision bump by the group's size, every upsert and change row in one statement;
# item ``pos`` (1-based) gets revision ``revision - size + pos``, as if the PUTs had committed one after another.
# If the tenant row is gone ``t`` is empty and nothing is written (no rows returned).
_PUT_GROUP = f"""WITH t AS (UPDATE {_T} SET revision = revision + %s WHERE id = %s RETURNING revision, version_floor),
i AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::bigint[])
      AS i(k, v, exp, at, pos)),
e AS ({_ENTRY_INSERT}SELECT %s, i.k, i.v, t.version_floor + 1, i.at, i.at, i.exp, t.revision - %s + i.pos
  FROM i CROSS JOIN t ORDER BY i.k
ON CONFLICT (tenant_id, "key") DO UPDATE SET
  value = excluded.value,
  version = {_E}.version + 1,
  created_at = CASE WHEN {_E}.expires_at IS NOT NULL AND {_E}.expires_at <= excluded.updated_at
               THEN excluded.created_at ELSE {_E}.created_at END,
  updated_at = excluded.updated_at,
  expires_at = excluded.expires_at,
  mod_revision = excluded.mod_revision
RETURNING "key", version, mod_revision, value, updated_at)
{_CHANGE}SELECT %s, e.mod_revision, e."key", 'set', e.value, e.version, e.updated_at FROM e
RETURNING "key", version, revision"""  # noqa: S608


@dataclass(frozen=True)
class _Put:
    tenant_id: int
    op: SetOp
    now: datetime


def _puts_apply(items: Sequence[_Put]) -> list[tuple[int, int] | BaseException]:
    """The leader's part of a group commit: every plain PUT of the group committed at once, one after-commit
    invalidation for all their keys. One tenant (the usual group) is one statement, its own transaction in
    autocommit (no BEGIN/COMMIT round trips); several tenants are one transaction, a statement per tenant in id
    order. Returns ``(version, revision)`` per item, or NotFound for an item whose tenant is gone."""
    if len(items) == 1:  # a group of one (no other writer meanwhile): the scalar statement, cheaper to bind
        try:
            return [_put_plain(items[0].tenant_id, items[0].op, items[0].now)]
        except NotFound as exc:
            return [exc]
    written: dict[tuple[int, str], tuple[int, int]] = {}
    by_tenant: dict[int, list[_Put]] = {}
    for item in items:
        by_tenant.setdefault(item.tenant_id, []).append(item)
    scopes = [entry_scope(item.tenant_id, item.op.key) for item in items]
    with transaction.atomic() if len(by_tenant) > 1 else contextlib.nullcontext(), sql.cursor() as cur:
        for tenant_id in sorted(by_tenant):
            puts = by_tenant[tenant_id]
            size = len(puts)
            cur.execute(
                _PUT_GROUP,
                [
                    size,
                    tenant_id,
                    [p.op.key for p in puts],
                    [p.op.value_json for p in puts],
                    [_db(p.op.expires_at) for p in puts],
                    [_db(p.now) for p in puts],
                    list(range(1, size + 1)),
                    tenant_id,
                    size,
                    tenant_id,
                ],
            )
            for key, version, revision in cur.fetchall():
                written[(tenant_id, str(key))] = (int(version), int(revision))
        cache.invalidate(*scopes)  # after the commit (at once for the autocommitted statement)
    out: list[tuple[int, int] | BaseException] = []
    for item in items:
        found = written.get((item.tenant_id, item.op.key))
        out.append(found if found is not None else NotFound("No such tenant.", code="tenant_not_found"))
    return out


def _puts_join(group: Sequence[_Put], item: _Put) -> bool:
    """A key appears once in a group (its version and revision follow from its position)."""
    return all(g.tenant_id != item.tenant_id or g.op.key != item.op.key for g in group)


#: This process's group commit of plain PUTs (PostgreSQL, autocommit): see bazaar.core.groupcommit.
#: A new leader waits for the writers of the last group to come back, at most as long as that group's commit took
#: (``gather``; measured with bench/capacity.py's CPU accounting, 2 workers x 4 threads, 16 clients: groups of
#: 2.0 -> 3.9 writes, app CPU per PUT -20 to -30 %, PostgreSQL's -30 to -40 %; docs/design-notes.md).
PUTS: GroupCommit[_Put, tuple[int, int]] = GroupCommit(
    _puts_apply, name="kv_put", max_items=64, joins=_puts_join, gather=1.0
)


def revision_bump(tenant_id: int) -> int:
    """Raise the tenant's revision by one and return it; locks the tenant row until the caller's transaction
    ends (every writer of a tenant takes this lock first, then entry rows). Raises NotFound ``tenant_not_found``."""
    with sql.cursor() as cur:
        cur.execute(_BUMP, [tenant_id])
        row = cur.fetchone()
    if row is None:
        raise NotFound("No such tenant.", code="tenant_not_found")
    return int(row[0])


def _write_logged(
    write: str,
    params: list[Any],
    tenant_id: int,
    revision: int,
    key: str,
    op: str,
    value: str | None,
    at: Any,
) -> int | None:
    """Run an entry write (``… RETURNING version`` appended here) and record its change row; return the version,
    or None when the write matched no row (nothing is recorded then). Caller owns the transaction."""
    change = [tenant_id, revision, key, op, value, at]
    with sql.cursor() as cur:  # prepared once per connection (PostgreSQL)
        if connection.vendor == "postgresql":
            cur.execute(_WITH_CHANGE.format(write=write) + _RETURNING, params + change)
            row = cur.fetchone()
        else:
            cur.execute(write + _RETURNING, params)
            row = cur.fetchone()
            if row is not None:
                cur.execute(_CHANGE + "VALUES (%s, %s, %s, %s, %s, %s, %s)", [*change[:5], row[0], at])
    return None if row is None else int(row[0])


def _apply_set(tenant_id: int, op: SetOp, now: datetime, revision: int, index: int | None = None) -> int:
    """Run one set at ``revision`` (already bumped by the caller); return the new version or raise Conflict.
    Caller owns the transaction."""
    n = _db(now)
    if op.if_version is None or op.if_version == 0:
        # Upsert. A dead row (expired or deleted) is revived with version + 1, so versions never repeat; a new
        # row starts above the tenant's floor (the highest version of a purged row). With if_version=0 only a
        # missing or dead row may be written: the unique (tenant, key) constraint decides a race of creators.
        params: list[Any] = [
            tenant_id,
            op.key,
            op.value_json,
            tenant_id,
            n,
            n,
            _db(op.expires_at),
            revision,
            n,
        ]
        statement = _UPSERT.format(revision="%s")
        if op.if_version == 0:
            statement += _ONLY_DEAD
            params.append(n)
    else:
        statement = _CAS
        params = [op.value_json, n, _db(op.expires_at), revision, tenant_id, op.key, op.if_version, n]
    version = _write_logged(statement, params, tenant_id, revision, op.key, "set", op.value_json, n)
    if version is None:
        raise _conflict(tenant_id, op.key, now, op.if_version, index)
    invalidate_entry(tenant_id, op.key)
    return version


def _put_plain(tenant_id: int, op: SetOp, now: datetime) -> tuple[int, int]:
    """A set without CAS on PostgreSQL: ``(version, revision)`` from one statement (its own transaction)."""
    n = _db(now)
    params = [tenant_id, tenant_id, op.key, op.value_json, tenant_id, n, n, _db(op.expires_at), n]
    with sql.cursor() as cur:
        cur.execute(_PUT_ONE, [*params, tenant_id, op.key, op.value_json, n])
        row = cur.fetchone()
    if row is None:  # the tenant row is gone (the upsert never refuses without CAS)
        raise NotFound("No such tenant.", code="tenant_not_found")
    invalidate_entry(tenant_id, op.key)
    return int(row[0]), int(row[1])


def _apply_delete(
    tenant_id: int, op: DeleteOp, now: datetime, revision: int, index: int | None = None
) -> int:
    """Expire the row now (a tombstone that keeps its version until the purge); return the tombstone's version."""
    n = _db(now)
    statement = _DELETE
    params: list[Any] = [n, n, revision, tenant_id, op.key, n]
    if op.if_version is not None:
        statement += _AND_VERSION
        params.append(op.if_version)
    version = _write_logged(statement, params, tenant_id, revision, op.key, "delete", None, n)
    row = None if version is None else (version,)
    if row is None:
        if op.if_version is not None:
            raise _conflict(tenant_id, op.key, now, op.if_version, index)
        details: dict[str, Any] = {"key": op.key}
        if index is not None:
            details["index"] = index
        raise NotFound(f"No key {op.key!r}.", code="key_not_found", details=details)
    invalidate_entry(tenant_id, op.key)
    return int(row[0])


def make_set(
    key: Any, value: Any, ttl: Any, if_version: Any, now: datetime, limits: Limits | None = None
) -> SetOp:
    return SetOp(
        clean_key(key, limits),
        encode_value(value, limits),
        expiry(ttl, now, limits),
        clean_if_version(if_version),
    )


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
    if op.if_version is None and connection.vendor == "postgresql":
        if connection.in_atomic_block:
            # Inside a caller's transaction: one statement joins that one, the invalidation waits for its commit.
            version, revision = _put_plain(tenant_id, op, now)
        else:
            # Autocommit: a group commit with the PUTs other threads of this process are making right now (alone,
            # a group of one); answered after the group's commit.
            version, revision = PUTS.submit(_Put(tenant_id, op, now))
    else:
        with transaction.atomic():  # a refused CAS rolls the revision bump back
            revision = revision_bump(tenant_id)
            version = _apply_set(tenant_id, op, now, revision)
    return WriteResult(op.key, version, now, op.expires_at, revision=revision)


def entry_delete(*, tenant_id: int, key: str, if_version: int | None = None) -> WriteResult:
    """Delete ``key`` (optionally only at version ``if_version``). The row is expired at once and purged later,
    keeping its version so a re-created key continues above it.

    Raises NotFound ``key_not_found`` (no live key), Conflict ``version_conflict`` (if_version does not match)
    or ValidationFailed; nothing is written then. One statement; cache invalidated after commit.
    """
    now = timezone.now()
    op = make_delete(key, if_version)
    with transaction.atomic():  # a refused delete rolls the revision bump back
        revision = revision_bump(tenant_id)
        version = _apply_delete(tenant_id, op, now, revision)
    return WriteResult(op.key, version, now, now, op="delete", revision=revision)


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
        revision = revision_bump(tenant_id)  # the tenant row first, then the entries in key order
        list(
            Entry.objects.select_for_update()
            .filter(tenant_id=tenant_id, key__in=sorted(seen))
            .order_by("key")
            .values_list("id", flat=True)
        )
        for i in sorted(range(len(ops)), key=lambda j: ops[j].key):
            op = ops[i]
            if isinstance(op, SetOp):
                version = _apply_set(tenant_id, op, now, revision, index=i)
                results[i] = WriteResult(op.key, version, now, op.expires_at, revision=revision)
            else:
                version = _apply_delete(tenant_id, op, now, revision, index=i)
                results[i] = WriteResult(op.key, version, now, now, op="delete", revision=revision)
    return [r for r in results if r is not None]


def entries_purge_expired(*, now: datetime | None = None, batch: int | None = None) -> int:
    """Delete dead rows (expired or deleted at or before ``now``) in batches; return how many.

    Versions must never repeat, so each batch first raises its tenants' ``version_floor`` to the highest version
    it is about to delete and commits that (tenants updated in pk order), and only then deletes, in a second
    short transaction, the rows that are still dead and not above that floor (a row revived meanwhile is kept;
    one that died again with a higher version waits for the next batch). A key created after the first commit
    starts above the floor; the rows are locked only by the DELETE itself. Dead rows need no cache
    invalidation: cached copies carry their expiry, and deletes invalidated when they happened.

    A removed row that *expired* (rather than being deleted, which logged its own change) is recorded as an
    ``expire`` change, under one new revision per tenant and batch, so watchers and histories see expiries.
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
                total += _purge_tenant_rows(tenant_id, ids[tenant_id], floors[tenant_id], now)
        if len(rows) < size:
            return total


def _purge_tenant_rows(tenant_id: int, pks: list[int], floor: int, now: datetime) -> int:
    """Delete one tenant's dead rows ``pks`` (still dead, not above ``floor``) and log the expired ones; return
    how many were deleted. Caller owns the transaction. Locks the tenant row first (the writers' order), then
    the rows."""
    list(Tenant.objects.select_for_update().filter(pk=tenant_id).values_list("pk", flat=True))
    qs = Entry.objects.filter(tenant_id=tenant_id, pk__in=pks, version__lte=floor, expires_at__lte=now)
    rows = list(qs.select_for_update().values_list("key", "version", "updated_at", "expires_at"))
    # A delete sets expires_at = updated_at (and logged itself); a TTL ran out when expires_at is later.
    expired = [
        (key, version, exp) for key, version, updated, exp in rows if exp is not None and exp > updated
    ]
    deleted, _ = qs.delete()
    if expired:
        revision = revision_bump(tenant_id)
        Change.objects.bulk_create(
            Change(tenant_id=tenant_id, revision=revision, key=key, op="expire", version=version, at=exp)
            for key, version, exp in sorted(expired)
        )
    return deleted
