"""Kvstore API schemas. Inputs reject unknown fields; outputs list their fields explicitly."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema

from bazaar.core.schemas import StrictIn


class SetIn(StrictIn):
    value: Any = Field(
        ..., description="Any JSON value; text is a JSON string. At most KVSTORE_MAX_VALUE_BYTES."
    )
    ttl: int | None = Field(default=None, description="Seconds until the entry expires; omitted: never.")
    if_version: int | None = Field(
        default=None,
        description="Compare-and-swap: write only if the current version is this; 0 = create only.",
    )


class EntryOut(Schema):
    key: str
    value: Any
    version: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    revision: int = Field(description="The tenant revision of this key's last write (also in X-Revision).")
    ttl: int | None = Field(description="Seconds left before expiry (rounded up), null without a TTL.")


class WriteOut(Schema):
    key: str
    version: int
    updated_at: datetime
    expires_at: datetime | None
    op: str = "set"
    revision: int = Field(description="The tenant revision this write committed as (also in X-Revision).")


class ListOut(Schema):
    items: list[EntryOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")
    revision: int = Field(
        description="The tenant revision read before the page: watch from it to miss nothing."
    )


class BatchOpIn(StrictIn):
    op: Literal["set", "delete"]
    key: str
    value: Any = None
    ttl: int | None = None
    if_version: int | None = None


class BatchIn(StrictIn):
    ops: list[BatchOpIn]


class BatchOut(Schema):
    results: list[WriteOut]


class TenantIn(StrictIn):
    slug: str
    name: str = ""


class TenantOut(Schema):
    id: int
    slug: str
    name: str
    created_at: datetime


class ApiKeyIn(StrictIn):
    name: str = "default"


class ApiKeyOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreatedOut(ApiKeyOut):
    secret: str = Field(description="The API key. Shown once: only its SHA-256 digest is stored.")


class KvImportOut(Schema):
    imported: int


def write_body(result: Any) -> dict[str, Any]:
    """The JSON answer to a write (``WriteOut``), for the API view and the WSGI fast path alike."""
    from bazaar.kvstore.cache import iso

    return {
        "key": result.key,
        "version": result.version,
        "updated_at": iso(result.updated_at),
        "expires_at": iso(result.expires_at),
        "op": result.op,
        "revision": result.revision,
    }
