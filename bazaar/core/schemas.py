"""Schema bases shared by the apps."""

from __future__ import annotations

from ninja import Schema
from pydantic import ConfigDict


class StrictIn(Schema):
    """Input schema that rejects unknown fields (422) instead of silently dropping them."""

    model_config = ConfigDict(extra="forbid")


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
