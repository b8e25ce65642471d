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

#: Per kind: the file's columns and the database's, compared pairwise (label, file index, database index).
#: Row layout: row_no, public_id, the file's values..., the database id (NULL: new), the database's values...
_ROWS = {
    "pokemon": (
        f"SELECT s.row_no, s.public_id, s.nickname, s.species, s.level, s.owner, s.date_of_ownership, "  # noqa: S608 (fixed names)
        f"p.id, p.nickname, p.species, p.level, t.public_id, p.date_of_ownership FROM {STAGE} s "
        "LEFT JOIN trading_pokemon p ON p.public_id = s.public_id LEFT JOIN trading_trainer t ON t.id = p.owner_id"
    ),
    "trainers": (
        f"SELECT s.row_no, s.public_id, s.first_name, s.last_name, s.date_of_birth, "  # noqa: S608 (fixed names)
        f"x.id, x.first_name, x.last_name, x.date_of_birth FROM {STAGE} s "
        "LEFT JOIN trading_trainer x ON x.public_id = s.public_id"
    ),
}
FIELDS = {
    "pokemon": ("nickname", "species", "level", "owner", "date of ownership"),
    "trainers": ("first name", "last name", "date of birth"),
}
_TABLE = {"pokemon": "trading_pokemon", "trainers": "trading_trainer"}
FETCH = 5000


def _text(value: Any) -> str:
    # Dates come back as date objects on PostgreSQL and ISO strings on SQLite; both print the same.
    return "" if value is None else str(value)


def staged_rows(cur: Any, kind: str, *, existing_only: bool = False) -> Iterator[tuple[Any, ...]]:
    """The staged rows joined with what the database holds now, in file order (batched fetches)."""
    sql = _ROWS[kind]
    if existing_only:
        sql += " WHERE p.id IS NOT NULL" if kind == "pokemon" else " WHERE x.id IS NOT NULL"
    cur.execute(sql + " ORDER BY s.row_no")
    while True:
        batch = cur.fetchmany(FETCH)
        if not batch:
            return
        yield from batch


class Fingerprint:
    """Accumulates the hash of the existing rows, one staged row at a time."""

    def __init__(self, kind: str) -> None:
        self.width = len(FIELDS[kind])
        self.digest = hashlib.blake2b(digest_size=20)

    def add(self, row: tuple[Any, ...]) -> None:
        db = row[2 + self.width :]
        if db[0] is None:
            return
        self.digest.update(("\x1f".join([_text(row[1]), *(_text(v) for v in db)]) + "\x1e").encode())

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


def fingerprint(cur: Any, kind: str) -> str:
    fp = Fingerprint(kind)
    for row in staged_rows(cur, kind, existing_only=True):
        fp.add(row)
    return fp.hexdigest()


def diff(kind: str, row: tuple[Any, ...]) -> tuple[str, list[list[str]]]:
    """``("new", [[field, "", value], ...])``, ``("changed", [[field, old, new], ...])`` or ``("unchanged", [])``."""
    width = len(FIELDS[kind])
    file_values = row[2 : 2 + width]
    db = row[2 + width :]
    if db[0] is None:
        return "new", [[f, "", _text(v)] for f, v in zip(FIELDS[kind], file_values, strict=True)]
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
