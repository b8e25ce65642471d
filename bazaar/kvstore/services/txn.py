"""Transactions like etcd's txn (compares, then a ``success`` or a ``failure`` op list, all or nothing, one
revision) and the server-side atomic increment built on them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeGuard

from django.db import transaction
from django.utils import timezone

from bazaar.core.errors import Conflict, DomainError, ValidationFailed
from bazaar.kvstore import conf
from bazaar.kvstore.models import Entry, Tenant
from bazaar.kvstore.services.entries import DeleteOp, SetOp, _apply_delete, _apply_set, revision_bump
from bazaar.kvstore.services.validation import clean_key, encode_value, expiry

_TARGETS = ("version", "value", "exists", "revision")
_CMP = ("=", "!=", "<", ">")
_OPS = ("get", "put", "delete", "incr")
_INT64 = 2**63 - 1


@dataclass(frozen=True)
class Compare:
    key: str
    target: str
    op: str
    value: Any


@dataclass(frozen=True)
class TxnOp:
    op: str
    key: str
    value_json: str = "null"
    expires_at: datetime | None = None
    by: int = 1
    has_ttl: bool = False


@dataclass
class TxnResult:
    succeeded: bool
    revision: int
    results: list[dict[str, Any]] = field(default_factory=list)


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _with_index(where: str, i: int, fn: Any) -> Any:
    try:
        return fn()
    except DomainError as exc:
        exc.details = {**(exc.details if isinstance(exc.details, dict) else {}), "at": f"{where}[{i}]"}
        raise


def _compare(raw: dict[str, Any]) -> Compare:
    key = clean_key(raw.get("key"))
    target, op, value = raw.get("target"), raw.get("op", "="), raw.get("value")
    if target not in _TARGETS:
        raise ValidationFailed(f"target must be one of {', '.join(_TARGETS)}.", code="invalid_compare")
    if op not in _CMP:
        raise ValidationFailed(f"op must be one of {' '.join(_CMP)}.", code="invalid_compare")
    if target in ("version", "revision") and (not _is_int(value) or value < 0):
        raise ValidationFailed(f"A {target} compare needs a whole number, 0 or more.", code="invalid_compare")
    if target == "exists" and (not isinstance(value, bool) or op not in ("=", "!=")):
        raise ValidationFailed("An exists compare needs true or false with = or !=.", code="invalid_compare")
    if target == "value":
        encode_value(value)  # size and JSON rules
    return Compare(key, str(target), str(op), value)


def _op(raw: dict[str, Any], now: datetime) -> TxnOp:
    kind, key = raw.get("op"), clean_key(raw.get("key"))
    if kind not in _OPS:
        raise ValidationFailed(f"op must be one of {', '.join(_OPS)}.", code="invalid_op")
    allowed = {"get": set(), "delete": set(), "put": {"value", "ttl"}, "incr": {"by", "ttl"}}[str(kind)]
    extra = {k for k, v in raw.items() if k not in ("op", "key") and v is not None} - allowed
    if extra:
        raise ValidationFailed(f"A {kind} takes no {', '.join(sorted(extra))}.", code="invalid_op")
    expires_at = expiry(raw.get("ttl"), now)
    if kind == "put":
        if "value" not in raw:
            raise ValidationFailed("A put needs a value.", code="missing_value")
        return TxnOp("put", key, encode_value(raw["value"]), expires_at, has_ttl=raw.get("ttl") is not None)
    if kind == "incr":
        by = raw.get("by", 1)
        if by is None:
            by = 1
        if not _is_int(by) or abs(by) > _INT64:
            raise ValidationFailed("by must be a whole number.", code="invalid_increment")
        return TxnOp("incr", key, expires_at=expires_at, by=by, has_ttl=raw.get("ttl") is not None)
    return TxnOp(str(kind), key)


def txn_parse(
    compare: Sequence[dict[str, Any]],
    success: Sequence[dict[str, Any]],
    failure: Sequence[dict[str, Any]],
    *,
    now: datetime,
) -> tuple[list[Compare], list[TxnOp], list[TxnOp]]:
    """Validate a txn's raw parts. Raises ValidationFailed/PayloadTooLarge with ``details.at`` naming the part
    (``compare[2]``, ``success[0]``…): ``too_many_ops`` over KVSTORE_MAX_BATCH_OPS in all, ``duplicate_key`` when
    a list writes one key twice. Writes nothing."""
    limit = conf.max_batch_ops()
    if len(compare) + len(success) + len(failure) > limit:
        raise ValidationFailed(
            f"A txn has at most {limit} compares and ops.", code="too_many_ops", details={"limit": limit}
        )
    cmps = [_with_index("compare", i, lambda r=r: _compare(r)) for i, r in enumerate(compare)]
    lists: list[list[TxnOp]] = []
    for where, raws in (("success", success), ("failure", failure)):
        ops = [_with_index(where, i, lambda r=r: _op(r, now)) for i, r in enumerate(raws)]
        written: set[str] = set()
        for i, o in enumerate(ops):
            if o.op != "get":
                if o.key in written:
                    raise ValidationFailed(
                        f"{where} writes {o.key!r} twice.",
                        code="duplicate_key",
                        details={"at": f"{where}[{i}]"},
                    )
                written.add(o.key)
        lists.append(ops)
    return cmps, lists[0], lists[1]


def _live(tenant_id: int, key: str, now: datetime) -> tuple[str, int, int, datetime | None] | None:
    """(value JSON, version, mod revision, expires_at) of the live key, or None."""
    row = (
        Entry.objects.live(now)
        .filter(tenant_id=tenant_id, key=key)
        .values_list("value", "version", "mod_revision", "expires_at")
    )
    found = row.first()
    return None if found is None else (str(found[0]), int(found[1]), int(found[2]), found[3])


def _holds(c: Compare, state: tuple[str, int, int, datetime | None] | None) -> bool:
    if c.target == "exists":
        actual: Any = state is not None
    elif c.target == "version":
        actual = 0 if state is None else state[1]
    elif c.target == "revision":
        actual = 0 if state is None else state[2]
    else:
        if state is None:
            return False  # a value compare on a missing key never holds
        actual = json.loads(state[0])
    want = c.value
    if c.op == "=":
        return bool(actual == want and type(actual) is type(want))
    if c.op == "!=":
        return not (actual == want and type(actual) is type(want))
    comparable = (_is_int(actual) or isinstance(actual, float)) and (_is_int(want) or isinstance(want, float))
    if not comparable and not (isinstance(actual, str) and isinstance(want, str)):
        return False  # < and > compare numbers with numbers and text with text
    return bool(actual < want) if c.op == "<" else bool(actual > want)


def _run(tenant_id: int, o: TxnOp, i: int, now: datetime, revision: int) -> dict[str, Any]:
    if o.op == "get":
        state = _live(tenant_id, o.key, now)
        if state is None:
            return {"op": "get", "key": o.key, "found": False}
        return {"op": "get", "key": o.key, "found": True, "value": json.loads(state[0]), "version": state[1],
                "revision": state[2]}  # fmt: skip
    if o.op == "delete":
        version = _apply_delete(tenant_id, DeleteOp(o.key, None), now, revision, index=i)
        return {"op": "delete", "key": o.key, "version": version}
    if o.op == "put":
        version = _apply_set(
            tenant_id, SetOp(o.key, o.value_json, o.expires_at, None), now, revision, index=i
        )
        return {"op": "put", "key": o.key, "version": version}
    state = _live(tenant_id, o.key, now)
    current: Any = 0 if state is None else json.loads(state[0])
    if not _is_int(current):
        raise Conflict(
            f"{o.key!r} does not hold a whole number.",
            code="not_a_number",
            details={"key": o.key, "index": i},
        )
    value = current + o.by
    if abs(value) > _INT64:
        raise Conflict(
            f"{o.key!r} would overflow a 64-bit counter.", code="counter_overflow", details={"key": o.key}
        )
    expires_at = o.expires_at if o.has_ttl else (None if state is None else state[3])
    version = _apply_set(tenant_id, SetOp(o.key, str(value), expires_at, None), now, revision, index=i)
    return {"op": "incr", "key": o.key, "value": value, "version": version}


def txn_apply(
    *,
    tenant_id: int,
    compare: Sequence[Compare],
    success: Sequence[TxnOp],
    failure: Sequence[TxnOp],
    now: datetime,
) -> TxnResult:
    """Evaluate every compare against the live keys, then run ``success`` if all hold, else ``failure``: all of
    the chosen ops or none, under one new revision (a txn that only reads raises none).

    Locks the tenant row first (``SELECT … FOR UPDATE``: writers of the tenant queue here, so compares and ops see
    one state), then every existing row the txn names, in key order (no deadlock between two txns). Raises what
    an op raises (NotFound ``key_not_found`` for a delete of a missing key, Conflict ``not_a_number`` /
    ``counter_overflow`` for an incr) with ``details.index``; the whole txn is rolled back then.
    """
    keys = sorted({c.key for c in compare} | {o.key for o in (*success, *failure)})
    with transaction.atomic():
        current = Tenant.objects.select_for_update().values_list("revision", flat=True).get(pk=tenant_id)
        list(
            Entry.objects.select_for_update()
            .filter(tenant_id=tenant_id, key__in=keys)
            .order_by("key")
            .values_list("id", flat=True)
        )
        succeeded = all(_holds(c, _live(tenant_id, c.key, now)) for c in compare)
        ops = success if succeeded else failure
        revision = revision_bump(tenant_id) if any(o.op != "get" for o in ops) else current
        results = [_run(tenant_id, o, i, now, revision) for i, o in enumerate(ops)]
    return TxnResult(succeeded, revision, results)


def entry_incr(*, tenant_id: int, key: str, by: Any = 1, ttl: Any = None) -> dict[str, Any]:
    """Add ``by`` (default 1) to the whole number at ``key`` atomically (a missing key counts as 0); with ``ttl``
    the key's expiry is set anew, otherwise kept. Returns ``{"key", "value", "version", "revision"}``.

    No retry loop: the tenant row lock serializes the read and the write. Raises ValidationFailed (key,
    ``invalid_increment``, TTL), Conflict ``not_a_number`` (the key holds something else) or
    ``counter_overflow``; nothing is written then.
    """
    now = timezone.now()
    _c, ops, _f = txn_parse([], [{"op": "incr", "key": key, "by": by, "ttl": ttl}], [], now=now)
    result = txn_apply(tenant_id=tenant_id, compare=[], success=ops, failure=[], now=now)
    out = result.results[0]
    return {"key": out["key"], "value": out["value"], "version": out["version"], "revision": result.revision}
