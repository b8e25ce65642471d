"""The KV import: JSON-lines records validated and staged in TEMP tables, then written all or nothing, one
revision for the whole import (``entries_import``).

On PostgreSQL the records are parsed and validated in a thread while the importing thread writes the blocks parsed
before (COPY into a block table, then one statement per block): the Python and the database work overlap instead of
running one after the other. SQLite stages every record, then upserts them one by one in key order."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
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

#: Every staged record's line and key (and, on SQLite, the record): duplicate keys are named from here.
_STAGE = "kvstore_import_stage"
#: PostgreSQL: the block being written (COPY target, emptied after each block).
_BLOCK_TABLE = "kvstore_import_block"
#: PostgreSQL: records per block. The parse of a block overlaps the write of the one before; at 1M records that
#: is 20 statements, and the first block's parse and the last block's write are all that do not overlap.
BLOCK = 50_000
#: ... and characters of COPY text per block at the most: with large values a block ends sooner, so the up to four
#: blocks alive at once (two waiting, one being parsed, one being written) stay a few tens of MB.
BLOCK_CHARS = 8 << 20
_STAGE_BATCH = 1000  # SQLite: records per INSERT into the stage, and per page read back in key order
_BS, _BS2, _NULL = "\\", "\\\\", "\\N"
#: Up to this many keys an import names each one it changed (one pipeline after commit); a larger import drops
#: the whole cache namespace instead (an epoch bump), as core.cache does for writes too large to name.
NAMED_INVALIDATION_MAX = 10_000
#: The fields a record may carry (an export's lines also carry version and expires_at, which are ignored).
_FIELDS = frozenset({"key", "value", "ttl", "version", "expires_at"})

# PostgreSQL: one block's records upserted, and their change rows written, in one statement (set-based like the
# trading importer; row locks in key order within the block). Parameters: tenant, tenant (floor), now, now,
# revision, now (revival), tenant, revision, now.
_SELECT_BLOCK = "".join(
    [
        f"SELECT %s, s.key, s.value_json, (SELECT version_floor + 1 FROM {_T} WHERE id = %s), %s, %s, ",  # noqa: S608
        f"s.expires_at::timestamptz, %s FROM {_BLOCK_TABLE} s ORDER BY s.key\n",
    ]
)
# The upsert leaves alone a row this import has already written (its mod_revision is the import's revision): a key
# repeated across blocks then comes back short by one row instead of being written twice. A key repeated within
# the block makes ON CONFLICT meet its own row twice, which PostgreSQL refuses.
_WRITE_ALL = "".join(
    [
        "WITH e AS (",
        _ENTRY_INSERT,
        _SELECT_BLOCK,
        _ON_CONFLICT,
        f" WHERE {_E}.mod_revision <> excluded.mod_revision",
        ' RETURNING "key", value, version) ',
        _CHANGE,
        "SELECT %s, %s, e.key, 'set', e.value, e.version, %s FROM e",
    ]
)
# The same write when no key of the block has a row yet (a first load, a new tenant or prefix): a plain INSERT,
# without ON CONFLICT's speculative insertion (a third of the statement's time at 1M keys). A key repeated in the
# block, or met in an earlier block, fails the unique index. No other writer's row can appear meanwhile: the
# caller holds the tenant row, which every writer of the tenant locks first. Parameters: as _WRITE_ALL without the
# revival's now.
_WRITE_NEW = "".join(
    [
        "WITH e AS (",
        _ENTRY_INSERT,
        _SELECT_BLOCK,
        ' RETURNING "key", value, version) ',
        _CHANGE,
        "SELECT %s, %s, e.key, 'set', e.value, e.version, %s FROM e",
    ]
)
_TENANT_HAS_ROWS = f"SELECT EXISTS (SELECT 1 FROM {_E} WHERE tenant_id = %s)"  # noqa: S608
# Whether any key of the block already has a row (live, expired, deleted, or written by an earlier block): one
# probe of the unique index per key. LATERAL … LIMIT 1 pins that plan: the block table has no statistics, and a
# planner that chose to scan the tenant's rows instead met, block after block, the rows the import had written
# (minutes at 1M keys).
_ANY_EXISTING = f"""SELECT EXISTS (SELECT 1 FROM {_BLOCK_TABLE} s,
  LATERAL (SELECT 1 FROM {_E} e WHERE e.tenant_id = %s AND e."key" = s.key LIMIT 1) hit)"""  # noqa: S608


def _ops(records: Iterable[Any], now: datetime, limits: Limits) -> Iterator[tuple[int, SetOp]]:
    """Each record validated into a SetOp with its line (1-based); a bad record raises with ``details.line``."""
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
        yield line, op


def _copy_line(line: int, op: SetOp) -> str:
    """One record in COPY's text format. Only a backslash needs escaping: a key has no control characters
    (clean_key), and compact JSON text writes tab, newline and carriage return as escapes."""
    expires = op.expires_at.isoformat() if op.expires_at is not None else _NULL
    return f"{line}\t{op.key.replace(_BS, _BS2)}\t{op.value_json.replace(_BS, _BS2)}\t{expires}"


_END = object()


class _Parser:
    """Validates the records in a thread and hands them over as blocks of COPY lines (at most two blocks wait, so
    memory stays flat). A record's error is handed over after the lines before it, and raised by ``blocks()`` in
    the importing thread. The thread touches no database connection."""

    def __init__(self, ops: Iterator[tuple[int, SetOp]], size: int, chars: int) -> None:
        self._queue: queue.Queue[tuple[list[str], object]] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ops, size, chars), name="kv-import-parse", daemon=True
        )
        self._thread.start()

    def _put(self, lines: list[str], end: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put((lines, end), timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, ops: Iterator[tuple[int, SetOp]], size: int, chars: int) -> None:
        lines: list[str] = []
        held = 0
        try:
            for line, op in ops:
                text = _copy_line(line, op)
                lines.append(text)
                held += len(text)
                if not line & 127:
                    # Hand the GIL over now and then: the importing thread, back from a statement, takes it at
                    # once instead of waiting out the interpreter's switch interval (5 ms) for each round trip.
                    time.sleep(0)
                if len(lines) >= size or held >= chars:
                    if not self._put(lines, None):
                        return  # the import has ended (an error in the importing thread)
                    lines, held = [], 0
        except BaseException as exc:  # raised again in the importing thread
            self._put(lines, exc)
            return
        self._put(lines, _END)

    def blocks(self) -> Iterator[list[str]]:
        """The blocks in order; raises a record's error after the block of the lines before it."""
        while True:
            lines, end = self._queue.get()
            if lines:
                yield lines
            if end is _END:
                return
            if isinstance(end, BaseException):
                raise end

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _first_duplicate(cur: Any) -> tuple[str, int, int] | None:
    """(key, first line, second line) of the stage's earliest repeated key, or None."""
    cur.execute(f"CREATE INDEX {_STAGE}_key ON {_STAGE} (key, line)")
    # One pass over the index: each line with the next line of the same key. The pair with the earliest second line
    # is the first repeat (a self-join did the same in 4x the time at 1M records).
    cur.execute(
        f"SELECT key, line, next_line FROM (SELECT key, line, "  # noqa: S608
        f"lead(line) OVER (PARTITION BY key ORDER BY line) AS next_line FROM {_STAGE}) pairs "
        "WHERE next_line IS NOT NULL ORDER BY next_line LIMIT 1"
    )
    row = cur.fetchone()
    return (str(row[0]), int(row[1]), int(row[2])) if row else None


def _refuse_duplicate(cur: Any) -> None:
    """ValidationFailed (``duplicate_key``) naming the earliest repeated key of the stage, if there is one."""
    duplicate = _first_duplicate(cur)
    if duplicate is not None:
        key, first, second = duplicate
        raise ValidationFailed(
            f"Key {key!r} appears twice (lines {first} and {second}).",
            code="duplicate_key",
            details={"key": key, "line": second, "first_line": first},
        )


def _staged_keys(cur: Any) -> list[str]:
    cur.execute(f"SELECT key FROM {_STAGE}")  # noqa: S608
    return [str(row[0]) for row in cur.fetchall()]


def entries_import(
    *,
    tenant_id: int,
    records: Iterable[dict[str, Any]],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Import ``{"key", "value", "ttl"?}`` records (an export's JSON lines): all of them or none.

    ``records`` is consumed as a stream (the API passes a generator over the spooled request body) and staged in
    TEMP tables, so memory stays flat whatever the size. A bad record raises ValidationFailed (or PayloadTooLarge)
    with ``details.line`` (1-based) and writes nothing. Keys must be unique in the input (``duplicate_key``).
    Writes are upserts inside one transaction, one revision for the whole import: on PostgreSQL a block of records
    at a time is COPYed and written, change rows included, by one statement, while the next block is parsed (see
    the module); SQLite upserts them one by one. ``progress(n)`` is called as rows are written. Returns the number
    of entries written. Row locks: the tenant row (the revision), then entries, in key order within a block. The
    cached entries are dropped after commit: each one by name up to NAMED_INVALIDATION_MAX keys, the whole cache
    namespace above it.
    """
    now = timezone.now()
    ops = _ops(records, now, Limits.current())
    if connection.vendor == "postgresql":
        return _import_postgresql(tenant_id, ops, now, progress)
    return _import_staged(tenant_id, ops, now, progress)


def _import_postgresql(
    tenant_id: int,
    ops: Iterator[tuple[int, SetOp]],
    now: datetime,
    progress: Callable[[int], None] | None,
) -> int:
    parser = _Parser(ops, BLOCK, BLOCK_CHARS)
    try:
        with transaction.atomic(), db.long_statements(), connection.cursor() as cur:
            cur.execute(
                f"DROP TABLE IF EXISTS {_STAGE}, {_BLOCK_TABLE}"
            )  # an earlier import's, same transaction
            cur.execute(f"CREATE TEMP TABLE {_STAGE} (line integer, key text) ON COMMIT DROP")
            cur.execute(
                f"CREATE TEMP TABLE {_BLOCK_TABLE} (line integer, key text, value_json text, expires_at text) "
                "ON COMMIT DROP"
            )
            # The foreign-key checks would run at COMMIT (Django's constraints are deferred), where the client
            # deadline of an ordinary round trip cuts a million of them: checked in the long statements instead.
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            revision: int | None = None
            staged = 0
            may_skip = bulk.may_skip_reference_checks(cur)
            probe = True
            for lines in parser.blocks():
                cur.execute(f"TRUNCATE {_BLOCK_TABLE}")
                with cur.cursor.copy(f"COPY {_BLOCK_TABLE} FROM STDIN") as copy:
                    copy.write("\n".join(lines) + "\n")
                cur.execute(f"INSERT INTO {_STAGE} SELECT line, key FROM {_BLOCK_TABLE}")  # noqa: S608
                if revision is None:
                    revision = revision_bump(tenant_id)  # the whole import is one revision
                    # A tenant without a single row (a first load) needs no probe of its blocks: every key is new,
                    # and a key met again from an earlier block fails the plain INSERT's unique index. Asked with
                    # the tenant row locked, so no other writer's row can appear until the import ends.
                    cur.execute(_TENANT_HAS_ROWS, [tenant_id])
                    probe = bool(cur.fetchone()[0])
                written = _write_block(cur, tenant_id, now, revision, probe=probe, may_skip=may_skip)
                if written != len(lines):  # the upsert skipped a key this import had already written
                    _refuse_duplicate(cur)
                    raise AssertionError("a block was written short without a repeated key")
                staged += written
                if progress is not None:
                    progress(staged)
            if revision is None:
                revision_bump(tenant_id)  # an empty import is a revision too, as on SQLite
            if staged <= NAMED_INVALIDATION_MAX:
                cache.invalidate(*[entry_scope(tenant_id, key) for key in _staged_keys(cur)])
            else:
                cache.invalidate_all()
            cur.execute(f"DROP TABLE {_STAGE}, {_BLOCK_TABLE}")
    finally:
        parser.close()
    return staged


def _write_block(
    cur: Any, tenant_id: int, now: datetime, revision: int, *, probe: bool, may_skip: bool
) -> int:
    """Write the block table's records and their change rows; the number written. A key repeated within the
    block, or met again from an earlier block, is refused with its name (``duplicate_key``). ``probe``: whether
    the block's keys may have rows already (else it is a plain INSERT)."""
    n = _db(now)
    try:
        with transaction.atomic():
            existing = False
            if probe:
                cur.execute(_ANY_EXISTING, [tenant_id])
                existing = bool(cur.fetchone()[0])
            # Every row written, entry and change alike, references the tenant, whose row revision_bump holds
            # locked FOR UPDATE until the import commits: their per-row foreign key checks are skipped (core.bulk).
            with bulk.referenced_rows_locked(cur, may_skip):
                if existing:
                    cur.execute(_WRITE_ALL, [tenant_id, tenant_id, n, n, revision, n, tenant_id, revision, n])
                else:
                    cur.execute(_WRITE_NEW, [tenant_id, tenant_id, n, n, revision, tenant_id, revision, n])
                return int(cur.rowcount)
    except (IntegrityError, ProgrammingError):
        _refuse_duplicate(cur)
        raise


def _import_staged(
    tenant_id: int,
    ops: Iterator[tuple[int, SetOp]],
    now: datetime,
    progress: Callable[[int], None] | None,
) -> int:
    """SQLite: every record validated and staged first, duplicates refused, then upserted one by one in key
    order, a page of the stage at a time."""
    with transaction.atomic(), db.long_statements(), connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {_STAGE}")
        cur.execute(f"CREATE TEMP TABLE {_STAGE} (line integer, key text, value_json text, expires_at text)")
        try:
            batch: list[tuple[int, str, str, str | None]] = []
            staged = 0
            for line, op in ops:
                batch.append(
                    (line, op.key, op.value_json, op.expires_at.isoformat() if op.expires_at else None)
                )
                staged += 1
                if len(batch) >= _STAGE_BATCH:
                    cur.executemany(f"INSERT INTO {_STAGE} VALUES (%s, %s, %s, %s)", batch)  # noqa: S608
                    batch = []
            if batch:
                cur.executemany(f"INSERT INTO {_STAGE} VALUES (%s, %s, %s, %s)", batch)  # noqa: S608
            _refuse_duplicate(cur)
            revision = revision_bump(tenant_id)  # the whole import is one revision
            for done, (_line, op) in enumerate(_in_key_order(cur), start=1):
                _apply_set(tenant_id, op, now, revision)
                if progress is not None:
                    progress(done)
        finally:
            with contextlib.suppress(DatabaseError):
                cur.execute(f"DROP TABLE IF EXISTS {_STAGE}")
    return staged


def _in_key_order(cur: Any) -> Iterator[tuple[int, SetOp]]:
    """The staged records in key order, a page at a time (keyset on the unique key)."""
    after: str | None = None
    while True:
        where, params = ("WHERE key > %s ", [after]) if after is not None else ("", [])
        cur.execute(
            f"SELECT line, key, value_json, expires_at FROM {_STAGE} {where}"  # noqa: S608
            f"ORDER BY key LIMIT {_STAGE_BATCH}",
            params,
        )
        rows = cur.fetchall()
        for line, key, value_json, expires in rows:
            yield (
                int(line),
                SetOp(key, value_json, datetime.fromisoformat(expires) if expires else None, None),
            )
        if len(rows) < _STAGE_BATCH:
            return
        after = rows[-1][1]
