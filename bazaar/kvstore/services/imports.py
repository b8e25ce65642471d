"""The KV import: JSON-lines records streamed into a TEMP table, validated, then upserted in key order, all or
nothing (``entries_import``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, ProgrammingError, connection, transaction
from django.utils import timezone

from bazaar.core import bulk, cache, db
from bazaar.core.errors import DomainError, ValidationFailed
from bazaar.kvstore.cache import entry_scope
from bazaar.kvstore.services.entries import (
    _CHANGE,
    _E,
    _ENTRY_INSERT,
    _ON_CONFLICT,
    _T,
    SetOp,
    _apply_set,
    _db,
    make_set,
    revision_bump,
)
from bazaar.kvstore.services.validation import Limits

_STAGE = "kvstore_import_stage"
_STAGE_BATCH = 1000
_COPY_LINES = 2000  # COPY text lines sent per write
_BS, _BS2, _NULL = "\\", "\\\\", "\\N"
#: Up to this many keys an import names each one it changed (one pipeline after commit); a larger import drops
#: the whole cache namespace instead (an epoch bump), as core.cache does for writes too large to name.
NAMED_INVALIDATION_MAX = 10_000
#: The fields a record may carry (an export's lines also carry version and expires_at, which are ignored).
_FIELDS = frozenset({"key", "value", "ttl", "version", "expires_at"})

# PostgreSQL: every staged record upserted, and its change row written, in one statement (the import is set-based
# like the trading importer; row locks are taken in key order). Parameters: tenant, tenant (floor), now, now,
# revision, now (revival), tenant, revision, now.
_SELECT_STAGED = "".join(
    [
        f"SELECT %s, s.key, s.value_json, (SELECT version_floor + 1 FROM {_T} WHERE id = %s), %s, %s, ",  # noqa: S608
        f"s.expires_at::timestamptz, %s FROM {_STAGE} s ORDER BY s.key\n",
    ]
)
_WRITE_ALL = "".join(
    [
        "WITH e AS (",
        _ENTRY_INSERT,
        _SELECT_STAGED,
        _ON_CONFLICT,
        ' RETURNING "key", value, version) ',
        _CHANGE,
        "SELECT %s, %s, e.key, 'set', e.value, e.version, %s FROM e",
    ]
)
# The same write when no staged key has a row yet (a first load, a new tenant or prefix): a plain INSERT, without
# ON CONFLICT's speculative insertion (a third of the statement's time at 1M keys). The unique index still
# refuses a row that would appear meanwhile, which cannot happen: the caller holds the tenant row, which every
# writer of the tenant locks first. Parameters: as _WRITE_ALL without the revival's now.
_WRITE_NEW = "".join(
    [
        "WITH e AS (",
        _ENTRY_INSERT,
        _SELECT_STAGED,
        ' RETURNING "key", value, version) ',
        _CHANGE,
        "SELECT %s, %s, e.key, 'set', e.value, e.version, %s FROM e",
    ]
)
# Whether any staged key already has a row (live, expired or deleted) in the tenant.
_ANY_EXISTING = f"""SELECT EXISTS (SELECT 1 FROM {_STAGE} s
  JOIN {_E} e ON e.tenant_id = %s AND e."key" = s.key)"""  # noqa: S608


class _Stage:
    """The validated records of one import, in a TEMP table of the import's transaction: memory stays flat
    whatever the size of the import (a 100 MB import once held ~1 GB of Python objects), the database finds
    duplicate keys and gives back the records in key order, a page at a time."""

    def __init__(self) -> None:
        self.cur = connection.cursor()
        self.cur.execute(f"DROP TABLE IF EXISTS {_STAGE}")
        on_commit = " ON COMMIT DROP" if connection.vendor == "postgresql" else ""
        self.cur.execute(
            f"CREATE TEMP TABLE {_STAGE} (line integer, key text, value_json text, expires_at text){on_commit}"
        )
        self.batch: list[tuple[int, str, str, str | None]] = []
        self.lines: list[str] = []
        self._copy_cm: Any = None
        self._copy: Any = None
        if connection.vendor == "postgresql":  # COPY: one stream instead of a statement per 1,000 records
            self._copy_cm = self.cur.cursor.copy(f"COPY {_STAGE} FROM STDIN")
            self._copy = self._copy_cm.__enter__()

    def add(self, line: int, op: SetOp) -> None:
        expires = op.expires_at.isoformat() if op.expires_at is not None else None
        if self._copy is not None:
            # COPY's text format built here, a block of lines at a time (write_row adapts value by value, about
            # twice the cost). Only a backslash needs escaping: a key has no control characters (clean_key), and
            # compact JSON text writes tab, newline and carriage return as escapes.
            self.lines.append(
                f"{line}\t{op.key.replace(_BS, _BS2)}\t{op.value_json.replace(_BS, _BS2)}\t{expires or _NULL}"
            )
            if len(self.lines) >= _COPY_LINES:
                self._write_lines()
            return
        self.batch.append((line, op.key, op.value_json, expires))
        if len(self.batch) >= _STAGE_BATCH:
            self.flush()

    def _write_lines(self) -> None:
        if self.lines:
            self._copy.write("\n".join(self.lines) + "\n")
            self.lines = []

    def _end_copy(self, ok: bool) -> None:
        if ok and self._copy is not None:
            self._write_lines()
        if self._copy_cm is not None:
            cm, self._copy_cm, self._copy = self._copy_cm, None, None
            if ok:
                cm.__exit__(None, None, None)
            else:
                cm.__exit__(RuntimeError, RuntimeError("import aborted"), None)

    def flush(self) -> None:
        self._end_copy(ok=True)
        if self.batch:
            self.cur.executemany(f"INSERT INTO {_STAGE} VALUES (%s, %s, %s, %s)", self.batch)  # noqa: S608
            self.batch = []

    def first_duplicate(self) -> tuple[str, int, int] | None:
        """(key, first line, second line) of the earliest repeated key, or None."""
        self.flush()
        self.cur.execute(f"CREATE INDEX {_STAGE}_key ON {_STAGE} (key, line)")
        # One pass over the index: each line with the next line of the same key. The pair with the earliest
        # second line is the first repeat (a self-join did the same in 4x the time at 1M records).
        self.cur.execute(
            f"SELECT key, line, next_line FROM (SELECT key, line, "  # noqa: S608
            f"lead(line) OVER (PARTITION BY key ORDER BY line) AS next_line FROM {_STAGE}) pairs "
            "WHERE next_line IS NOT NULL ORDER BY next_line LIMIT 1"
        )
        row = self.cur.fetchone()
        return (str(row[0]), int(row[1]), int(row[2])) if row else None

    def in_key_order(self) -> Iterator[tuple[int, SetOp]]:
        """The staged records in key order, a page at a time (keyset on the unique key)."""
        after: str | None = None
        while True:
            where, params = ("WHERE key > %s ", [after]) if after is not None else ("", [])
            self.cur.execute(
                f"SELECT line, key, value_json, expires_at FROM {_STAGE} {where}"  # noqa: S608
                f"ORDER BY key LIMIT {_STAGE_BATCH}",
                params,
            )
            rows = self.cur.fetchall()
            for line, key, value_json, expires in rows:
                yield (
                    int(line),
                    SetOp(key, value_json, datetime.fromisoformat(expires) if expires else None, None),
                )
            if len(rows) < _STAGE_BATCH:
                return
            after = rows[-1][1]

    def write_all(self, tenant_id: int, now: datetime, revision: int) -> None:
        """PostgreSQL: upsert every staged record and write its change row in one statement."""
        n = _db(now)
        # The foreign-key checks of a million rows would run at COMMIT (Django's constraints are deferred), where
        # the client deadline of an ordinary round trip cuts them (seen at 1M keys): checked here, inside the
        # long statement instead. Same checks, same transaction.
        self.cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        self.cur.execute(_ANY_EXISTING, [tenant_id])
        row = self.cur.fetchone()
        # Every row written, entry and change alike, references the tenant, whose row revision_bump holds locked
        # FOR UPDATE until the import commits: their per-row foreign key checks are skipped (core.bulk).
        with bulk.referenced_rows_locked(self.cur):
            if row is not None and row[0]:
                self.cur.execute(
                    _WRITE_ALL, [tenant_id, tenant_id, n, n, revision, n, tenant_id, revision, n]
                )
            else:
                self.cur.execute(_WRITE_NEW, [tenant_id, tenant_id, n, n, revision, tenant_id, revision, n])

    def staged_keys(self) -> list[str]:
        self.cur.execute(f"SELECT key FROM {_STAGE}")  # noqa: S608
        return [str(row[0]) for row in self.cur.fetchall()]

    def close(self) -> None:
        with contextlib.suppress(DatabaseError, RuntimeError):
            self._end_copy(ok=False)
        with contextlib.suppress(DatabaseError):
            self.cur.execute(f"DROP TABLE IF EXISTS {_STAGE}")
        self.cur.close()


def _refuse_duplicate(stage: _Stage) -> None:
    """ValidationFailed (``duplicate_key``) naming the earliest repeated key of the stage, if there is one."""
    duplicate = stage.first_duplicate()
    if duplicate is not None:
        key, first, second = duplicate
        raise ValidationFailed(
            f"Key {key!r} appears twice (lines {first} and {second}).",
            code="duplicate_key",
            details={"key": key, "line": second, "first_line": first},
        )


def entries_import(
    *,
    tenant_id: int,
    records: Iterable[dict[str, Any]],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Import ``{"key", "value", "ttl"?}`` records (an export's JSON lines): all of them or none.

    ``records`` is consumed as a stream (the API passes a generator over the request body) and staged in a TEMP
    table, so memory stays flat whatever the size. Every record is validated before anything is written; a bad
    record raises ValidationFailed (or PayloadTooLarge) with ``details.line`` (1-based) and writes nothing. Keys
    must be unique in the input (``duplicate_key``). Writes are upserts in key order inside one transaction, one
    revision for the whole import: on PostgreSQL the records are COPYed into the stage and written, change rows
    included, by one statement (the SQLite default upserts them one by one); ``progress(n)`` is called as rows
    are written. Returns the number of entries written. Row locks: the tenant row (the revision), then each entry
    in key order. The cached entries are dropped after commit: each one by name up to NAMED_INVALIDATION_MAX
    keys, the whole cache namespace above it.
    """
    now = timezone.now()
    limits = Limits.current()
    with transaction.atomic(), db.long_statements():
        stage = _Stage()
        try:
            staged = 0
            for line, record in enumerate(records, start=1):
                try:
                    if not isinstance(record, dict) or "key" not in record or "value" not in record:
                        raise ValidationFailed(
                            'Each line must be an object with "key" and "value".', code="invalid_record"
                        )
                    if not record.keys() <= _FIELDS:
                        unknown = sorted(set(record) - _FIELDS)
                        raise ValidationFailed(f"Unknown fields: {unknown}.", code="invalid_record")
                    op = make_set(record["key"], record["value"], record.get("ttl"), None, now, limits)
                except DomainError as exc:
                    exc.details = {**(exc.details if isinstance(exc.details, dict) else {}), "line": line}
                    raise
                stage.add(line, op)
                staged += 1
            stage.flush()  # the COPY ends here: the connection is free for other statements
            pg = connection.vendor == "postgresql"
            if not pg:
                _refuse_duplicate(stage)
            revision = revision_bump(tenant_id)  # the whole import is one revision
            if pg:
                # A key twice in the stage fails the write itself (the unique index, or ON CONFLICT meeting its
                # own row again): only then is the stage searched for the first repeat, to name it. An index and a
                # pass over a million staged keys less on every import that has none.
                try:
                    with transaction.atomic():
                        stage.write_all(tenant_id, now, revision)
                except (IntegrityError, ProgrammingError):
                    _refuse_duplicate(stage)
                    raise
                if staged <= NAMED_INVALIDATION_MAX:
                    cache.invalidate(*[entry_scope(tenant_id, key) for key in stage.staged_keys()])
                else:
                    cache.invalidate_all()
                if progress is not None:
                    progress(staged)
            else:
                for done, (_line, op) in enumerate(stage.in_key_order(), start=1):
                    _apply_set(tenant_id, op, now, revision)
                    if progress is not None:
                        progress(done)
        finally:
            stage.close()
    return staged
