"""What an import file would change, read from the import's staging table: the per-row comparison with the
database (the preview's diff) and a fingerprint of the database rows the file touches.

The fingerprint is a hash of every existing row the file names (its id, database key and current values, in file
order). A preview stores it; Confirm recomputes it inside the import's transaction after locking those rows
(``SELECT ... FOR UPDATE`` in primary-key order, the order the trade services lock pokemon in), so a trade accepted
or a row edited between the preview and the confirm is noticed before anything is written: Conflict
``import_stale`` (409), nothing imported. Rows that are new in the file are part of it too: one created meanwhile
now exists, and the hash changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

from django.db import connection

from bazaar.core.errors import Conflict
from bazaar.trading.services.import_db import STAGE

#: Per kind: the staged rows joined with what the database holds now. Row layout: row_no, public_id, the file's
#: values (FIELDS order), the database id (NULL: new), the database's values (same order).
_COLUMNS = {
    "pokemon": "s.row_no, s.public_id, s.nickname, s.species, s.level, s.owner, s.date_of_ownership, "
    "p.id, p.nickname, p.species, p.level, t.public_id, p.date_of_ownership",
    "trainers": "s.row_no, s.public_id, s.first_name, s.last_name, s.date_of_birth, "
    "x.id, x.first_name, x.last_name, x.date_of_birth",
}
_FROM = {
    "pokemon": f"FROM {STAGE} s LEFT JOIN trading_pokemon p ON p.public_id = s.public_id "
    "LEFT JOIN trading_trainer t ON t.id = p.owner_id",
    "trainers": f"FROM {STAGE} s LEFT JOIN trading_trainer x ON x.public_id = s.public_id",
}
_KEY = {"pokemon": "p.id", "trainers": "x.id"}
#: An existing row the import would change (the same comparison as the upsert's ``WHERE``).
_DIFFERS = {
    "pokemon": "(p.nickname <> s.nickname OR p.species <> s.species OR p.level <> s.level "
    "OR t.public_id <> s.owner OR p.date_of_ownership <> s.date_of_ownership)",
    "trainers": "(x.first_name <> s.first_name OR x.last_name <> s.last_name OR x.date_of_birth <> s.date_of_birth)",
}
_MOVES = {"pokemon": "t.public_id <> s.owner", "trainers": "1 = 0"}
FIELDS = {
    "pokemon": ("nickname", "species", "level", "owner", "date of ownership"),
    "trainers": ("first name", "last name", "date of birth"),
}
_TABLE = {"pokemon": "trading_pokemon", "trainers": "trading_trainer"}
FETCH = 5000


def _text(value: Any) -> str:
    # Dates come back as date objects on PostgreSQL and ISO strings on SQLite; both print the same.
    return "" if value is None else str(value)


def _fetch(cur: Any) -> Iterator[tuple[Any, ...]]:
    while True:
        batch = cur.fetchmany(FETCH)
        if not batch:
            return
        yield from batch


def totals(cur: Any, kind: str) -> dict[str, int]:
    """What the import would do, counted by the database: new rows, changed rows, ownership changes."""
    key = _KEY[kind]
    cur.execute(
        f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN {key} IS NULL THEN 1 ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN {key} IS NOT NULL AND {_DIFFERS[kind]} THEN 1 ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN {key} IS NOT NULL AND {_MOVES[kind]} THEN 1 ELSE 0 END), 0) {_FROM[kind]}"
    )
    rows, new, changed, moves = (int(v) for v in cur.fetchone())
    return {"new": new, "changed": changed, "unchanged": rows - new - changed, "ownership_changes": moves}


def listed_rows(cur: Any, kind: str, limit: int) -> Iterator[tuple[Any, ...]]:
    """The first ``limit`` new or changed rows, in file order (batched fetches)."""
    key = _KEY[kind]
    cur.execute(
        f"SELECT {_COLUMNS[kind]} {_FROM[kind]} WHERE {key} IS NULL OR {_DIFFERS[kind]} "
        f"ORDER BY s.row_no LIMIT {int(limit)}"
    )
    return _fetch(cur)


def fingerprint(cur: Any, kind: str) -> str:
    """A hash of every existing row the file names (id, database key and current values), in file order. On
    PostgreSQL computed by the database (md5 over the rows as text); elsewhere here. A preview and its confirm
    run on the same database, so they always compare like with like."""
    key = _KEY[kind]
    if connection.vendor == "postgresql":
        values = _COLUMNS[kind].split(", ")[len(FIELDS[kind]) + 2 :]  # the database's columns
        cur.execute(
            f"SELECT md5(string_agg(concat_ws(E'\\x1f', s.public_id, {', '.join(values)}), E'\\x1e' "
            f"ORDER BY s.row_no)) {_FROM[kind]} WHERE {key} IS NOT NULL"
        )
        return str(cur.fetchone()[0] or "")
    digest = hashlib.blake2b(digest_size=16)
    width = len(FIELDS[kind])
    cur.execute(f"SELECT {_COLUMNS[kind]} {_FROM[kind]} WHERE {key} IS NOT NULL ORDER BY s.row_no")
    for row in _fetch(cur):
        digest.update(("\x1f".join([_text(row[1]), *(_text(v) for v in row[2 + width :])]) + "\x1e").encode())
    return digest.hexdigest()


def diff(kind: str, row: tuple[Any, ...]) -> tuple[str, list[Any]]:
    """``("new", [value, ...])`` (the file's values, in FIELDS order), ``("changed", [[field, old, new], ...])``
    (only the fields that differ) or ``("unchanged", [])``. Compact on purpose: a preview keeps 100,000 of them."""
    width = len(FIELDS[kind])
    file_values = row[2 : 2 + width]
    db = row[2 + width :]
    if db[0] is None:
        return "new", [str(v) for v in file_values]  # staged values are never NULL
    changes = [
        [f, _text(old), _text(new)]
        for f, new, old in zip(FIELDS[kind], file_values, db[1:], strict=True)
        if _text(old) != _text(new)
    ]
    return ("changed" if changes else "unchanged"), changes


def _lock_touched(cur: Any, kind: str) -> None:
    if connection.vendor != "postgresql":
        return  # SQLite has one writer at a time: the import's own write lock serializes it
    table = _TABLE[kind]
    cur.execute(
        f"SELECT COUNT(*) FROM (SELECT x.id FROM {table} x WHERE x.public_id IN "  # noqa: S608 (fixed names)
        f"(SELECT public_id FROM {STAGE}) ORDER BY x.id FOR UPDATE OF x) q"
    )


def expect(expected: str) -> Callable[[Any, str], None]:
    """An ``import_csv(inspect=...)`` hook: lock the rows the file touches, then refuse (Conflict ``import_stale``,
    nothing written) unless they are exactly as they were when ``expected`` was taken."""

    def check(cur: Any, kind: str) -> None:
        _lock_touched(cur, kind)
        if fingerprint(cur, kind) != expected:
            raise Conflict(
                "The data changed since the preview (a trade or an edit touched rows of this file); nothing was "
                "imported. Preview the file again to see what it would do now.",
                code="import_stale",
            )

    return check
