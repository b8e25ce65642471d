"""Schema bases and the input rules every app shares.

Hostile input is refused here, once, before anything reaches a service or the database (PostgreSQL refuses a NUL
in text with an error, a 64-bit column overflows at 2**63, and a naive datetime cannot be compared with an aware
one): every input schema derives from ``CheckedIn`` (query filters) or ``StrictIn`` (bodies), whose one validator
walks every value; plain query and path parameters use the annotated types below. The HTML forms apply the same
rule through ``bazaar.core.forms``.

- Text: no C0 control characters and no lone surrogates (they cannot be encoded as UTF-8). ``\\t``, ``\\n`` and
  ``\\r`` are allowed in body text (descriptions, addresses, values); single-line fields (``Line``) and query/path
  parameters refuse them too. Refused with 422 ``invalid_text``; search terms (``SearchText``) strip them instead.
- Integers: within a signed 64-bit range (``int_range``, 422); offsets at most ``MAX_OFFSET``.
- Datetimes: an offset is required (422 ``invalid_datetime``); see docs/design-notes.md for why.
- Strict JSON types in bodies (``StrictIn``): a boolean, a string or a float is not an integer, a number is not a
  date, a string is not a boolean (422 ``invalid_type``); dates and datetimes lie within ``DATE_MIN``..``DATE_MAX``
  (422 ``out_of_range``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import types
import typing
from typing import Annotated, Any

from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
#: The largest ``offset`` a list accepts: far past any real list, far below the 64-bit limit of SQL OFFSET.
MAX_OFFSET = 1_000_000_000

_CONTROLS = re.compile(r"[\x00-\x1f\ud800-\udfff]")
_CONTROLS_BUT_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can."""
    match = (_CONTROLS_BUT_LINE_BREAKS if multiline else _CONTROLS).search(value)
    if match is None:
        return None
    char = match.group()
    what = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"Text must not contain {what} (U+{ord(char):04X} at position {match.start()})."


def strip_controls(value: str) -> str:
    """A search term with control characters and lone surrogates removed (searching for them finds nothing)."""
    return _CONTROLS.sub("", value)


def _check(value: str, *, multiline: bool) -> str:
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        raise PydanticCustomError("invalid_text", problem)
    return value


def _line(value: str) -> str:
    return _check(value, multiline=False)


def _multiline(value: str) -> str:
    return _check(value, multiline=True)


#: A single-line text (a name, an identifier, a query or path parameter): no control characters at all.
Line = Annotated[str, AfterValidator(_line)]
#: A text that may span lines (a description, an address): no control characters but tab, CR and LF.
Text = Annotated[str, AfterValidator(_multiline)]
#: A search term: control characters are removed, not refused.
SearchText = Annotated[str, AfterValidator(strip_controls)]
#: A query-string offset.
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET)]
#: Deepest ``offset`` a keyset list accepts (past it the database would walk and drop that many rows per request).
OFFSET_WINDOW = 10_000
#: A keyset list's offset. The window is checked by ``bazaar.core.pagination.keyset_page`` (422 ``offset_too_deep``,
#: naming the cursor), not here: pydantic would answer first with ``validation_error`` and its own words. The
#: OpenAPI document still states the window as the maximum (``bazaar.config.openapi.PARAM_BOUNDS``).
KeysetOffset = Annotated[
    int, Field(ge=0, le=MAX_OFFSET, description=f"At most {OFFSET_WINDOW}: page deeper with cursor.")
]
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,1024}")


def _cursor(value: str) -> str:
    if not _CURSOR.fullmatch(value):
        raise PydanticCustomError(
            "invalid_cursor",
            "The cursor is not valid for this list and order: pass next_cursor from the previous page unchanged.",
        )
    return value


#: The opaque cursor of a keyset list (``next_cursor`` of the previous page). Its alphabet and length are checked
#: here and answered like every other bad cursor (422 ``invalid_cursor``, not pydantic's ``validation_error``);
#: the document states them as the schema's bounds.
Cursor = Annotated[
    str,
    AfterValidator(_cursor),
    Field(json_schema_extra={"minLength": 1, "maxLength": 1024, "pattern": r"^[A-Za-z0-9_-]+$"}),
]
#: A query-string integer that reaches a 64-bit column.
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]


def _walk(value: Any) -> Any:
    """Apply the shared rules to one validated value, descending into lists and dicts (JSON values)."""
    if isinstance(value, str):
        return _multiline(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise PydanticCustomError("int_range", "Integers must fit in 64 bits (at most 2**63 - 1).")
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise PydanticCustomError(
                "invalid_datetime", "A datetime needs a UTC offset, e.g. 2026-12-04T14:13:06+00:00 or ...Z."
            )
        return value
    if isinstance(value, list | tuple):
        for item in value:
            _walk(item)
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            _walk(key)
            _walk(item)
        return value
    return value


class CheckedIn(Schema):
    """Input (query filters) whose every text, integer and datetime value obeys the shared rules above."""

    @field_validator("*", mode="after")
    @classmethod
    def _shared_rules(cls, value: Any) -> Any:
        return _walk(value)


#: The dates a body may carry: birth dates, due dates and return dates all lie well inside these years.
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2100, 12, 31)


def _scalar(annotation: Any) -> Any:
    """The one scalar type of a field (``int | None`` → ``int``), or None for anything else."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _scalar(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _scalar(args[0]) if len(args) == 1 else None
    return annotation if isinstance(annotation, type) else None


def _wrong_type(expected: str, value: Any) -> PydanticCustomError:
    got = "null" if value is None else type(value).__name__.replace("str", "string").replace("dict", "object")
    return PydanticCustomError(
        "strict_type", f"Expected {expected}, got {got} (JSON types are not converted)."
    )


def _strict(kind: Any, value: Any) -> Any:
    """Refuse the conversions pydantic's lax mode would make for a JSON body."""
    if value is None or kind is None:
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise _wrong_type("a boolean", value)
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type("an integer", value)
    elif kind in (float, decimal.Decimal):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _wrong_type("a number", value)
    elif kind in (dt.date, dt.datetime) and not isinstance(value, str):
        raise _wrong_type("an ISO 8601 string", value)
    return value


def _in_range(value: Any) -> Any:
    day = value.date() if isinstance(value, dt.datetime) else value
    if isinstance(day, dt.date) and not DATE_MIN <= day <= DATE_MAX:
        raise PydanticCustomError(
            "date_range", f"Dates must lie between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}."
        )
    return value


def _state_date_range(schema: dict[str, Any]) -> None:
    """Say in the JSON Schema what ``_in_range`` enforces: each date or datetime field gets ``formatMinimum`` /
    ``formatMaximum`` (the JSON Schema vocabulary for bounds of formatted strings) and a sentence."""
    for prop in schema.get("properties", {}).values():
        for option in [prop, *prop.get("anyOf", [])]:
            if option.get("format") in ("date", "date-time"):
                option["formatMinimum"] = DATE_MIN.isoformat()
                option["formatMaximum"] = DATE_MAX.isoformat()
                rule = f"Between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()} (422 out_of_range)."
                prop["description"] = (
                    f"{prop['description'].rstrip('.')}. {rule}" if prop.get("description") else rule
                )


class StrictIn(CheckedIn):
    """A JSON body: unknown fields are refused (422) instead of silently dropped, and JSON types are taken as
    they are (``_strict``): ``true``, ``"1"`` or ``1.0`` is not the integer 1, ``0`` is not 1970-01-01."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_state_date_range)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_types(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        return _strict(_scalar(field.annotation) if field else None, value)

    @field_validator("*", mode="after")
    @classmethod
    def _date_range(cls, value: Any) -> Any:
        return _in_range(value)


#: The 422 codes of the shared rules, by pydantic error type; the API's validation handler answers with these.
ERROR_CODES = {
    "invalid_text": "invalid_text",
    "invalid_cursor": "invalid_cursor",
    "invalid_datetime": "invalid_datetime",
    "int_range": "out_of_range",
    "date_range": "out_of_range",
    "strict_type": "invalid_type",
}


class ErrorOut(Schema):
    code: str
    message: str
    details: object | None = None


def text_limits(schema: type[Schema], fields: tuple[str, ...]) -> dict[str, int]:
    """The ``max_length`` of each of ``fields`` as declared on ``schema``: a fast path checks the very limits the
    API validates with, instead of restating them."""
    from annotated_types import MaxLen

    out: dict[str, int] = {}
    for name in fields:
        lengths = [m.max_length for m in schema.model_fields[name].metadata if isinstance(m, MaxLen)]
        if not lengths:
            raise ValueError(f"{schema.__name__}.{name} declares no max_length")
        out[name] = lengths[0]
    return out
