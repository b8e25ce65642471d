"""The database side of the trading import: the TEMP staging table (COPY / executemany), set-based checks and
the set-based write. The only vendor-specific part of the import."""

from __future__ import annotations

import datetime as dt
import functools
import time
from typing import Any

from django.db import IntegrityError, connection, transaction

from bazaar.core import bulk
from bazaar.core.errors import Conflict
from bazaar.core.sql import table
from bazaar.trading.services.import_rows import FastRows, _Errors

STAGE = "trading_import_stage"
BATCH = 5000

# --- staging: the one vendor-specific part ------------------------------------------------------------------

_STAGE_COLUMNS = {
    "trainers": "row_no bigint, public_id text, first_name text, last_name text, date_of_birth date",
    "pokemon": "row_no bigint, public_id text, nickname text, species text, level integer, owner text, "
    "date_of_ownership date",
}


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)  # int, date (ISO) — never contain special characters


class _Stager:
    """Streams rows into the TEMP staging table: COPY on PostgreSQL, batched executemany on SQLite."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.pg = connection.vendor == "postgresql"
        self.cursor = connection.cursor()
        self.cursor.execute("DROP TABLE IF EXISTS trading_import_stage")
        on_commit = " ON COMMIT DROP" if self.pg else ""
        self.cursor.execute(f"CREATE TEMP TABLE {STAGE} ({_STAGE_COLUMNS[kind]}){on_commit}")
        self.ncols = _STAGE_COLUMNS[kind].count(",") + 1
        self.batch: list[tuple[Any, ...]] = []
        self.lines: list[str] = []
        self._copy_cm: Any = None
        self._copy: Any = None
        self.fast: FastRows | None = None
        self.ids_unique = False
        if self.pg:
            # DMY: the fast path sends dates as written (DD-MM-YYYY or YYYY-MM-DD; both read right). Local to the
            # import's transaction; the output style stays ISO, which psycopg needs.
            self.cursor.execute("SET LOCAL DateStyle = 'ISO, DMY'")
            self.fast = FastRows(kind)
            raw = self.cursor.cursor  # psycopg 3 cursor under Django's wrapper
            self._copy_cm = raw.copy("COPY trading_import_stage FROM STDIN")
            self._copy = self._copy_cm.__enter__()

    def add_line(self, line: str) -> None:
        """One line of COPY text from the fast path (PostgreSQL only)."""
        self.lines.append(line)
        if len(self.lines) >= 2000:
            self._copy.write("\n".join(self.lines) + "\n")
            self.lines = []

    def add(self, row: tuple[Any, ...]) -> None:
        if self._copy is not None:
            # COPY text format built here (about twice as fast as write_row's per-value adaptation): ids, numbers
            # and dates are validated already; free text is escaped.
            self.add_line("\t".join([_copy_text(v) for v in row]))
            return
        self.batch.append(row)
        if len(self.batch) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.batch:
            marks = ", ".join(["%s"] * self.ncols)
            self.cursor.executemany(f"INSERT INTO {STAGE} VALUES ({marks})", self.batch)  # noqa: S608 (placeholders only)
            self.batch = []

    def finish(self, ok: bool = True) -> None:
        if self._copy_cm is not None:
            if ok and self.lines:
                self._copy.write("\n".join(self.lines) + "\n")
            self.lines = []
            cm, self._copy_cm, self._copy = self._copy_cm, None, None
            if ok:
                cm.__exit__(None, None, None)
            else:
                cm.__exit__(RuntimeError, RuntimeError("import aborted"), None)
        elif ok:
            self._flush()
        if ok:
            # A unique index doubles as the duplicate check: it builds in one sort, and only when it fails (the
            # file repeats an id) does the slower grouping query run to name the rows (_set_checks).
            try:
                with transaction.atomic():
                    self.cursor.execute(
                        "CREATE UNIQUE INDEX trading_import_stage_id ON trading_import_stage (public_id)"
                    )
                self.ids_unique = True
            except IntegrityError:
                self.cursor.execute(
                    "CREATE INDEX trading_import_stage_id ON trading_import_stage (public_id)"
                )
            if self.pg:
                self.cursor.execute("ANALYZE trading_import_stage")

    def close(self) -> None:
        if self._copy_cm is not None:
            self.finish(ok=False)
        self.cursor.close()


@functools.cache
def _tables() -> dict[str, str]:
    """The statements' table names: the models' (quoted, from ``bazaar.core.sql.table``, one style with every other
    raw statement) and this module's own TEMP staging table."""
    from bazaar.trading.models import OfferItem, OwnershipChange, Pokemon, TradeOffer, Trainer

    return {
        "trainer": table(Trainer),
        "pokemon": table(Pokemon),
        "change": table(OwnershipChange),
        "offer": table(TradeOffer),
        "item": table(OfferItem),
        "stage": STAGE,
    }


def _sql(statement: str) -> str:
    """``statement`` with its ``{trainer}``, ``{pokemon}``, ... table names filled in (:func:`_tables`)."""
    return statement.format_map(_tables())


def _fetch_errors(cur: Any, sql: str, errors: _Errors, column: str, message: str) -> None:
    cur.execute(f"SELECT COUNT(*) FROM ({sql}) q")  # noqa: S608 (sql is a constant of this module)
    total = int(cur.fetchone()[0])
    if not total:
        return
    cur.execute(f"{sql} ORDER BY 1 LIMIT {int(errors.limit)}")
    rows = cur.fetchall()
    for row_no, value in rows:
        errors.items.append({"row": int(row_no), "column": column, "message": message.format(value=value)})
    errors.count += total


def _set_checks(cur: Any, kind: str, errors: _Errors, ids_unique: bool = False) -> None:
    if not ids_unique:  # else the staging table's unique index was built: no id repeats
        _fetch_errors(
            cur,
            "SELECT s.row_no, s.public_id FROM trading_import_stage s JOIN (SELECT public_id, MIN(row_no) AS first_row "
            "FROM trading_import_stage GROUP BY public_id HAVING COUNT(*) > 1) d "
            "ON d.public_id = s.public_id AND s.row_no > d.first_row",
            errors,
            "id",
            "duplicate id {value!r} (already earlier in the file)",
        )
    if kind == "pokemon":
        if connection.vendor == "postgresql":
            # Lock before check-then-act: the owners the file names can be neither deleted nor re-keyed until the
            # import commits (KEY SHARE, what each row's foreign key check takes; readers and renames pass), so
            # the check below stays true for the write, which must not lose a row to a vanished owner.
            cur.execute(
                _sql(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM {trainer} t WHERE t.public_id IN "
                    "(SELECT DISTINCT owner FROM {stage}) FOR KEY SHARE OF t) q"
                )
            )
        _fetch_errors(
            cur,
            _sql(
                "SELECT s.row_no, s.owner FROM {stage} s LEFT JOIN {trainer} t ON t.public_id = s.owner WHERE t.id IS NULL"
            ),
            errors,
            "owner",
            "owner {value!r} is not a known trainer",
        )
    errors.items.sort(key=lambda e: (e["row"], e["column"]))
    del errors.items[errors.limit :]


def _count_existing(cur: Any, kind: str) -> int:
    table = _tables()["trainer" if kind == "trainers" else "pokemon"]
    cur.execute(f"SELECT COUNT(*) FROM {STAGE} s JOIN {table} x ON x.public_id = s.public_id")  # noqa: S608 (fixed names)
    return int(cur.fetchone()[0])


def _count_owner_changes(cur: Any) -> int:
    """Staged pokemon that exist and would move to another trainer (a dry run's history rows beyond the new ones).
    Only a dry run asks: a real import counts the history rows it writes."""
    cur.execute(
        _sql(
            "SELECT COUNT(*) FROM {stage} s JOIN {pokemon} p ON p.public_id = s.public_id "
            "JOIN {trainer} t ON t.public_id = s.owner WHERE p.owner_id <> t.id"
        )
    )
    return int(cur.fetchone()[0])


def _count_rows(cur: Any, table: str) -> int:
    cur.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 (a fixed staging table name)
    return int(cur.fetchone()[0])


def _concurrent_change() -> Conflict:
    return Conflict(
        "Pokemon in the file were created or deleted by someone else during the import; nothing was imported. "
        "Try again.",
        code="import_conflict",
    )


def _owner_checks(cur: Any, when: str) -> None:
    """``SET CONSTRAINTS <pokemon.owner's foreign key> IMMEDIATE`` (or back to ``DEFERRED``) for this transaction.

    Immediate, the per-row owner checks of the write run at the end of its statement, under the import's bulk
    statement timeout, instead of inside COMMIT, a round trip under the ordinary client deadline (about 4 s of
    checks per million new rows here, against a 6 s deadline: a cut COMMIT leaves the caller not knowing whether
    the import landed). The same checks and the same count (measured: no faster, no slower); the constraint itself
    is untouched, and a violation surfaces at the statement as ``import_conflict``. Set back afterwards so the rest
    of a caller's transaction keeps Django's deferred checks."""
    names = _tables()
    cur.execute(
        "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = %s::regclass "
        "AND confrelid = %s::regclass",
        [names["pokemon"], names["trainer"]],
    )
    for (name,) in cur.fetchall():
        cur.execute(f"SET CONSTRAINTS {connection.ops.quote_name(name)} {when}")


_HISTORY_OF_NEW = (
    "INSERT INTO {change} (pokemon_id, from_trainer_id, to_trainer_id, at, cause) "
    "SELECT id, NULL, owner_id, %s, 'import' FROM ins"
)


def _upsert(cur: Any, kind: str, staged: int, now: dt.datetime, timings: dict[str, Any]) -> int:
    """The set-based write. Returns the number of history rows written (pokemon that are new or changed owner)."""
    clock = time.perf_counter()
    pg = connection.vendor == "postgresql"

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()

    if kind == "trainers":
        cur.execute(
            _sql(
                "INSERT INTO {trainer} (public_id, first_name, last_name, date_of_birth, created_at, updated_at) "
                "SELECT public_id, first_name, last_name, date_of_birth, %s, %s FROM {stage} WHERE 1 = 1 "
                "ON CONFLICT (public_id) DO UPDATE SET first_name = excluded.first_name, "
                "last_name = excluded.last_name, date_of_birth = excluded.date_of_birth, updated_at = excluded.updated_at"
            ),
            [now, now],
        )
        return 0
    # The pokemon of the file that exist, with their owners before the write (for the history).
    cur.execute("DROP TABLE IF EXISTS trading_import_stage_old")
    cur.execute(
        _sql(
            "CREATE TEMP TABLE trading_import_stage_old AS SELECT p.id, p.public_id, p.owner_id FROM {pokemon} p "
            "JOIN {stage} s ON s.public_id = p.public_id"
        )
    )
    existing = _count_rows(cur, "trading_import_stage_old")
    if existing:
        cur.execute("CREATE INDEX trading_import_stage_old_id ON trading_import_stage_old (public_id)")
        if pg:
            cur.execute("ANALYZE trading_import_stage_old")
    lap("old_owners_s")
    if pg:
        _owner_checks(cur, "IMMEDIATE")
    history = 0
    if existing:
        # Existing rows: one set-based UPDATE of the rows that differ from the file (an unchanged row is not
        # rewritten: re-importing a file costs reads, not a million new row versions and index entries). A row
        # changed concurrently is re-checked by PostgreSQL on its newest version before it is updated. Every new
        # owner is one the checks found and locked: their per-row foreign key checks are skipped (core.bulk).
        with bulk.referenced_rows_locked(cur):
            cur.execute(
                _sql(
                    "UPDATE {pokemon} SET nickname = s.nickname, species = s.species, level = s.level, "
                    "owner_id = t.id, date_of_ownership = s.date_of_ownership, updated_at = %s "
                    "FROM {stage} s JOIN {trainer} t ON t.public_id = s.owner "
                    "WHERE {pokemon}.public_id = s.public_id AND ({pokemon}.nickname <> s.nickname "
                    "OR {pokemon}.species <> s.species OR {pokemon}.level <> s.level "
                    "OR {pokemon}.owner_id <> t.id OR {pokemon}.date_of_ownership <> s.date_of_ownership)"
                ),
                [now],
            )
        # Every pokemon that existed must still be there (one deleted meanwhile would be neither updated nor
        # inserted): the write is all-or-nothing against concurrent deletes too.
        cur.execute(
            _sql(
                "SELECT COUNT(*) FROM trading_import_stage_old o JOIN {pokemon} p ON p.id = o.id "
                "AND p.public_id = o.public_id"
            )
        )
        if int(cur.fetchone()[0]) != existing:
            raise _concurrent_change()
        cur.execute(
            _sql(
                "INSERT INTO {change} (pokemon_id, from_trainer_id, to_trainer_id, at, cause) "
                "SELECT p.id, o.owner_id, p.owner_id, %s, 'import' FROM trading_import_stage_old o "
                "JOIN {pokemon} p ON p.id = o.id WHERE p.owner_id <> o.owner_id"
            ),
            [now],
        )
        history += int(cur.rowcount)
    lap("update_s")
    new = staged - existing
    if new:
        new_rows = (
            "SELECT s.public_id, s.nickname, s.species, s.level, t.id, s.date_of_ownership, %s, %s "
            "FROM {stage} s JOIN {trainer} t ON t.public_id = s.owner"
        )
        if existing:
            new_rows += (
                " WHERE NOT EXISTS (SELECT 1 FROM trading_import_stage_old o WHERE o.public_id = s.public_id)"
            )
        insert = _sql(
            "INSERT INTO {pokemon} (public_id, nickname, species, level, owner_id, date_of_ownership, "
            "created_at, updated_at) " + new_rows
        )
        try:
            with transaction.atomic():
                if pg:
                    # New rows and their history in one statement: the history comes from RETURNING, not from a
                    # second join of a million staged rows with the table just written. The owners were checked
                    # and locked above: no per-row foreign key check (core.bulk; history rows have no FKs).
                    with bulk.referenced_rows_locked(cur):
                        cur.execute(
                            f"WITH ins AS ({insert} RETURNING id, owner_id) {_sql(_HISTORY_OF_NEW)}",
                            [now, now, now],
                        )
                        inserted = int(cur.rowcount)
                else:
                    cur.execute(insert, [now, now])
                    inserted = int(cur.rowcount)
                    cur.execute(
                        _sql(
                            "INSERT INTO {change} (pokemon_id, from_trainer_id, to_trainer_id, at, cause) "
                            "SELECT p.id, NULL, p.owner_id, %s, 'import' FROM {stage} s "
                            "JOIN {pokemon} p ON p.public_id = s.public_id WHERE NOT EXISTS "
                            "(SELECT 1 FROM trading_import_stage_old o WHERE o.public_id = s.public_id)"
                        ),
                        [now],
                    )
        except IntegrityError:
            raise _concurrent_change()
        if inserted != new:
            raise _concurrent_change()
        history += inserted
    lap("insert_s")
    if pg:
        _owner_checks(cur, "DEFERRED")
    if existing:
        # Open offers that include a pokemon whose owner just changed can never be accepted: close them now.
        cur.execute(
            _sql(
                "UPDATE {offer} SET state = 'invalid', reason = 'pokemon changed hands by import', "
                "decided_at = %s WHERE state = 'open' AND id IN (SELECT i.offer_id FROM {item} i "
                "JOIN trading_import_stage_old o ON o.id = i.pokemon_id JOIN {pokemon} p ON p.id = o.id "
                "WHERE o.owner_id <> p.owner_id)"
            ),
            [now],
        )
    cur.execute("DROP TABLE IF EXISTS trading_import_stage_old")
    lap("offers_s")
    return history
