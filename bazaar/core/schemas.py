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
