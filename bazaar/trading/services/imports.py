"""Streaming, all-or-nothing CSV import of trainers or pokemon (the seed's ``/upload/``, without partial writes).

One pass over the file, inside one transaction:

1. The bytes are decoded incrementally (``TextIOWrapper`` over the upload, UTF-8 with or without BOM) and parsed
   by ``csv``; each row is checked for types, dates (``DD-MM-YYYY`` or ``YYYY-MM-DD``), level range and id shape.
   Valid rows stream into a TEMP staging table (PostgreSQL: ``COPY``; SQLite: batched ``executemany``), so memory
   stays flat whatever the file size: nothing but the current batch and the first errors is kept.
2. Set-based checks on the staging table: duplicate ids in the file, pokemon owners that are not trainers in the
   database. Errors are reported by file line (the header is line 1) and column: the first
   TRADING_IMPORT_ERROR_LIMIT, plus the total count.
3. Any error: the transaction rolls back, nothing is written. Dry run: the created/updated counts are computed and
   the transaction rolls back. Otherwise trainers are upserted by one ``INSERT ... ON CONFLICT DO UPDATE``; pokemon
   by one ``UPDATE ... FROM`` (existing ids whose values differ from the file) and one plain ``INSERT ... SELECT``
   (new ids; a concurrent create of the same id is a unique violation → Conflict ``import_conflict``, nothing
   written); on PostgreSQL the new rows' history comes from that INSERT's ``RETURNING`` in the same statement,
   and pokemon that changed owner get a history row.

On PostgreSQL plain rows skip the per-field check: one regular expression validates the tab-joined row, which is
then sent to COPY as it is (``import_rows.FastRows``); design-notes.md has the measurements.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from typing import IO, Any

from django.db import connection, transaction
from django.utils import timezone

from bazaar.core import db, freshness
from bazaar.core.errors import ValidationFailed
from bazaar.trading import conf
from bazaar.trading.models import OwnershipChange, Pokemon, Trainer
from bazaar.trading.services.import_db import (
    _count_existing,
    _count_owner_changes,
    _set_checks,
    _Stager,
    _upsert,
)
from bazaar.trading.services.import_rows import (
    KINDS,
    ImportRejected,
    ImportResult,
    Progress,
    _check_row,
    _Counting,
    _Errors,
    _header,
    parse_date,
)

__all__ = ["ImportRejected", "ImportResult", "Progress", "import_csv", "parse_date"]

PROGRESS_EVERY = 20000


def import_csv(
    *,
    source: IO[bytes] | Any,
    kind: str | None = None,
    dry_run: bool = False,
    progress: Callable[[Progress], None] | None = None,
    max_bytes: int | None = None,
    inspect: Callable[[Any, str], None] | None = None,
) -> ImportResult:
    """Import a trainers or pokemon CSV (``kind`` None: detected from the header) all-or-nothing.

    Raises PayloadTooLarge ``import_too_large``; ValidationFailed ``empty_file``, ``wrong_columns``,
    ``invalid_encoding``, ``not_csv``; ImportRejected ``import_invalid`` (row errors, first N and the total).
    Nothing is written on any error or in a dry run. Takes no explicit row locks: the upsert's own row locks
    serialize it with concurrent trades, which lock the same rows.

    ``inspect(cursor, kind)`` runs once the file passed every check, before anything is written, inside the
    import's transaction with the staging table filled: the preview reads its per-row diff there, and a confirmed
    preview re-checks (under lock) that the rows it touches are as previewed; any DomainError it raises aborts
    the import with nothing written. ``ownership_changes`` counts the pokemon that move to another trainer, in a
    dry run too.
    """
    started = timezone.now()
    t0 = time.perf_counter()
    limit = max_bytes if max_bytes is not None else conf.import_max_bytes()
    counting = _Counting(source, limit)
    text = io.TextIOWrapper(io.BufferedReader(counting, 1 << 16), encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    errors = _Errors(conf.import_error_limit())
    rows = 0
    try:
        kind, order = _header(reader, kind)
        width = len(KINDS[kind])
        with transaction.atomic(), db.long_statements():  # one COPY of a million rows outlives the deadline
            stager = _Stager(kind)
            fast = stager.fast
            in_order = order == list(range(width))
            try:
                for values in reader:
                    line = reader.line_num
                    if not values or (len(values) == 1 and not values[0].strip()):
                        continue  # blank line
                    rows += 1
                    if len(values) != width:
                        errors.add(line, "*", f"expected {width} fields, found {len(values)}")
                    else:
                        if not in_order:
                            values = [values[i] for i in order]
                        copy_line = fast.line(line, values) if fast is not None else None
                        if copy_line is not None:
                            stager.add_line(copy_line)
                        else:
                            staged = _check_row(kind, line, values, errors)
                            if staged is not None:
                                stager.add(staged)
                    if progress is not None and rows % PROGRESS_EVERY == 0:
                        progress(Progress("validating", rows, counting.count))
                stager.finish()
            finally:
                stager.close()
            streamed = time.perf_counter()
            if rows == 0:
                raise ValidationFailed("The file has a header but no rows.", code="empty_file")
            with connection.cursor() as cur:
                if progress is not None:
                    progress(Progress("checking", rows, counting.count))
                _set_checks(cur, kind, errors, ids_unique=stager.ids_unique)
                checked = time.perf_counter()
                if errors.count:
                    raise ImportRejected(
                        f"{errors.count} invalid value(s); nothing was imported.",
                        details={
                            "errors": errors.items,
                            "error_count": errors.count,
                            "rows": rows,
                            "kind": kind,
                        },
                    )
                updated = _count_existing(cur, kind)
                result = ImportResult(
                    kind=kind, dry_run=dry_run, rows=rows, created=rows - updated, updated=updated
                )
                if inspect is not None:
                    inspect(cur, kind)
                if dry_run:
                    if kind == "pokemon":
                        # What the write would record: a history row per new pokemon and per change of owner.
                        result.ownership_changes = _count_owner_changes(cur)
                        result.history_rows = result.created + result.ownership_changes
                    transaction.set_rollback(True)
                else:
                    if progress is not None:
                        progress(Progress("writing", rows, counting.count))
                    result.history_rows = _upsert(cur, kind, rows, timezone.now(), result.extra)
                    if kind == "pokemon":
                        result.ownership_changes = result.history_rows - result.created
                    cur.execute("DROP TABLE IF EXISTS trading_import_stage")
                    # Raw COPY and INSERT ... SELECT send no signals: name what was written.
                    freshness.changed(Trainer if kind == "trainers" else Pokemon)
                    if kind == "pokemon":
                        freshness.changed(OwnershipChange)
                    result.extra["stream_s"] = round(streamed - t0, 3)
                    result.extra["checks_s"] = round(checked - streamed, 3)
                    written = time.perf_counter()
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            f"The file is not valid UTF-8 (near byte {exc.start} of a block, after row {rows}).",
            code="invalid_encoding",
            details={"after_row": rows},
        )
    except csv.Error as exc:
        raise ValidationFailed(
            f"The file is not a readable CSV: {exc}.", code="not_csv", details={"after_row": rows}
        )
    if "stream_s" in result.extra:
        result.extra["commit_s"] = round(time.perf_counter() - written, 3)
    result.seconds = (timezone.now() - started).total_seconds()
    if progress is not None:
        progress(Progress("done", rows, counting.count, rows_written=0 if dry_run else rows))
    return result
