"""CSV rows for the trading import: header matching, per-row validation, results and errors (no database)."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bazaar.core.errors import PayloadTooLarge, ValidationFailed
from bazaar.core.schemas import text_problem
from bazaar.trading.services.common import PUBLIC_ID_RE

TRAINER_COLUMNS = ("id", "firstname", "lastname", "dateofbirth")
POKEMON_COLUMNS = ("id", "nickname", "species", "level", "owner", "dateofownership")
KINDS = {"trainers": TRAINER_COLUMNS, "pokemon": POKEMON_COLUMNS}

_DMY = re.compile(r"^(\d{2})-(\d{2})-(\d{4})$")
_YMD = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class ImportRejected(ValidationFailed):
    """The file has invalid rows; ``details`` = {"errors": [...first N...], "error_count": total}."""

    code = "import_invalid"
    default_message = "The file has invalid rows; nothing was imported."


@dataclass
class Progress:
    phase: str  # "validating", "checking", "writing", "done"
    rows: int
    bytes_read: int
    rows_written: int = 0


@dataclass
class ImportResult:
    kind: str
    dry_run: bool
    rows: int
    created: int
    updated: int
    history_rows: int = 0
    ownership_changes: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "history_rows": self.history_rows,
            "ownership_changes": self.ownership_changes,
            "seconds": round(self.seconds, 3),
            "phases": self.extra,
        }


class _Counting(io.RawIOBase):
    """A raw stream over any ``.read(n)`` file that counts the bytes read and enforces the size limit."""

    def __init__(self, source: Any, limit: int) -> None:
        self.source = source
        self.count = 0
        self.limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        n = len(data)
        self.count += n
        if self.count > self.limit:
            raise PayloadTooLarge(
                f"The file is larger than the import limit of {self.limit} bytes.",
                code="import_too_large",
                details={"limit": self.limit},
            )
        if b"\x00" in data:
            # NUL never occurs in a text CSV (and PostgreSQL text cannot hold it): a binary file.
            raise ValidationFailed("The file contains NUL bytes: it is not a CSV text file.", code="not_csv")
        buffer[:n] = data
        return n


def parse_date(text: str) -> dt.date | None:
    """``DD-MM-YYYY`` (the seed's files) or ISO ``YYYY-MM-DD``; None when neither or not a real date."""
    m = _DMY.match(text)
    try:
        if m:
            return dt.date(int(m[3]), int(m[2]), int(m[1]))
        m = _YMD.match(text)
        if m:
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
    return None


class _Errors:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: list[dict[str, Any]] = []
        self.count = 0

    def add(self, row: int, column: str, message: str) -> None:
        self.count += 1
        if len(self.items) < self.limit:
            self.items.append({"row": row, "column": column, "message": message})


def _header(reader: Iterator[list[str]], kind: str | None) -> tuple[str, list[int]]:
    try:
        first = next(reader)
    except StopIteration:
        raise ValidationFailed("The file is empty.", code="empty_file")
    names = [h.strip().lower().replace("_", "") for h in first]
    if kind is None:
        kind = next((k for k, cols in KINDS.items() if sorted(names) == sorted(cols)), None)
        if kind is None:
            raise ValidationFailed(
                "The header matches neither a trainers nor a pokemon file.",
                code="wrong_columns",
                details={
                    "found": first[:20],
                    "trainers": list(TRAINER_COLUMNS),
                    "pokemon": list(POKEMON_COLUMNS),
                },
            )
    expected = KINDS[kind]
    if sorted(names) != sorted(expected):
        raise ValidationFailed(
            f"A {kind} file needs exactly the columns {', '.join(expected)} (any order, any case).",
            code="wrong_columns",
            details={"found": first[:20], "expected": list(expected)},
        )
    return kind, [names.index(c) for c in expected]


# The fast path (PostgreSQL COPY): a row whose fields, tab-joined in the staging column order, match this pattern
# is valid as it stands and is already a line of COPY text — ids, a level 1-100 without leading zeros, a
# DD-MM-YYYY or YYYY-MM-DD date (DateStyle DMY reads both), free text of 1-100 characters without surrounding
# whitespace, control characters or backslash (nothing to escape). The date's calendar check is cached per distinct value.
# Everything else goes through _check_row, which reports errors; the pattern accepts a strict subset of what
# _check_row accepts and stages the same values, so the fast path changes speed, never results.
_ID = r"[A-Za-z0-9_.\-]{1,64}"
_TEXT = r"[^\s\\\x00-\x1f](?:[^\x00-\x1f\\]{0,98}[^\s\\\x00-\x1f])?"
_LEVEL = r"(?:100|[1-9][0-9]?)"
_DATE = r"(?:[0-9]{2}-[0-9]{2}-[0-9]{4}|[0-9]{4}-[0-9]{2}-[0-9]{2})"
FAST_ROW = {
    "trainers": re.compile("\t".join([_ID, _TEXT, _TEXT, _DATE])),
    "pokemon": re.compile("\t".join([_ID, _TEXT, _TEXT, _LEVEL, _ID, _DATE])),
}
_DATE_CACHE_LIMIT = 100_000


class FastRows:
    """Turns a parsed row (fields in staging order) into a COPY text line, or None when the row needs _check_row."""

    def __init__(self, kind: str) -> None:
        self.match = FAST_ROW[kind].fullmatch
        self.good_dates: set[str] = set()

    def line(self, line_no: int, values: list[str]) -> str | None:
        joined = "\t".join(values)
        if self.match(joined) is None:
            return None
        date = values[-1]
        if date not in self.good_dates:
            if parse_date(date) is None:
                return None
            if len(self.good_dates) >= _DATE_CACHE_LIMIT:
                self.good_dates.clear()
            self.good_dates.add(date)
        return f"{line_no}\t{joined}"


def _text_ok(line: int, col: str, text: str, errors: _Errors) -> bool:
    """A name: 1-100 characters under the API's rule for body text (core.schemas: no control characters but tab,
    CR and LF, which a quoted CSV field may hold)."""
    if not text or len(text) > 100:
        errors.add(line, col, f"{col} must be 1-100 characters")
        return False
    if text_problem(text, multiline=True) is not None:
        errors.add(line, col, f"{col} must not contain control characters")
        return False
    return True


def _check_row(kind: str, line: int, values: list[str], errors: _Errors) -> tuple[Any, ...] | None:
    """Validate one data row; return the staging tuple or None (errors recorded)."""
    ok = True
    pid = values[0].strip()
    if not PUBLIC_ID_RE.match(pid):
        errors.add(line, "id", "id must be 1-64 letters, digits, '_', '.' or '-'")
        ok = False
    if kind == "trainers":
        first, last, born = values[1].strip(), values[2].strip(), values[3].strip()
        for col, text in (("firstName", first), ("lastName", last)):
            ok = _text_ok(line, col, text, errors) and ok
        date = parse_date(born)
        if date is None:
            errors.add(line, "dateOfBirth", f"{born[:30]!r} is not a date (DD-MM-YYYY or YYYY-MM-DD)")
            ok = False
        return (line, pid, first, last, date) if ok else None
    nickname, species, level_text, owner, owned = (v.strip() for v in values[1:6])
    for col, text in (("nickname", nickname), ("species", species)):
        ok = _text_ok(line, col, text, errors) and ok
    level = int(level_text) if level_text.isdigit() and len(level_text) <= 3 else 0
    if not 1 <= level <= 100:
        errors.add(line, "level", f"level {level_text[:20]!r} is not an integer from 1 to 100")
        ok = False
    if not PUBLIC_ID_RE.match(owner):
        errors.add(line, "owner", "owner must be a trainer id")
        ok = False
    date = parse_date(owned)
    if date is None:
        errors.add(line, "dateOfOwnership", f"{owned[:30]!r} is not a date (DD-MM-YYYY or YYYY-MM-DD)")
        ok = False
    return (line, pid, nickname, species, level, owner, date) if ok else None
