"""The API's pagination convention: ``limit``/``offset`` with a maximum limit, and the total count."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db.models import QuerySet
from ninja import Field, Schema

from bazaar.core.errors import ValidationFailed
from bazaar.core.schemas import MAX_OFFSET, CheckedIn

T = TypeVar("T")


class PageParams(CheckedIn):
    limit: int = Field(default=None, ge=1, description="Items per page (max API_MAX_LIMIT).")  # type: ignore[assignment]
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


def clamp(limit: int | None, offset: int | None) -> tuple[int, int]:
    """Validate and default ``limit``/``offset``; a limit over the maximum is a 422, not silently cut."""
    lim = settings.API_DEFAULT_LIMIT if limit is None else int(limit)
    off = 0 if offset is None else int(offset)
    if lim < 1 or lim > settings.API_MAX_LIMIT:
        raise ValidationFailed(
            f"limit must be between 1 and {settings.API_MAX_LIMIT}.",
            code="invalid_limit",
            details={"max_limit": settings.API_MAX_LIMIT},
        )
    if off < 0:
        raise ValidationFailed("offset must be 0 or more.", code="invalid_offset")
    return lim, off


class Page(Schema, Generic[T]):
    count: int
    limit: int
    offset: int
    items: list[T]


def paginate(qs: QuerySet[Any], limit: int | None, offset: int | None) -> dict[str, Any]:
    lim, off = clamp(limit, offset)
    return {"count": qs.count(), "limit": lim, "offset": off, "items": list(qs[off : off + lim])}
