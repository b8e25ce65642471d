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


class ChangeOut(Schema):
    revision: int
    key: str
    op: Literal["set", "delete", "expire"]
    value: Any = Field(description="The value a set wrote; null for a delete or an expiry.")
    version: int
    at: datetime


class KvHistoryOut(Schema):
    key: str
    items: list[ChangeOut] = Field(description="Newest first.")
    next_before: int | None = Field(
        description="Pass as ?before= for older changes; null when there are none."
    )
    revision: int = Field(description="The tenant's revision when the page was read.")
    compacted_revision: int = Field(description="Changes at or below this revision were compacted away.")


class CompareIn(StrictIn):
    key: str
    target: Literal["version", "value", "exists", "revision"] = Field(
        description="version (0 = missing), value (JSON), exists (true/false), revision (the key's mod revision)."
    )
    op: Literal["=", "!=", "<", ">"] = "="
    value: Any = Field(..., description="What to compare with.")


class TxnOpIn(StrictIn):
    op: Literal["get", "put", "delete", "incr"]
    key: str
    value: Any = Field(default=None, description="put: the value.")
    ttl: int | None = Field(default=None, description="put, incr: seconds until the key expires.")
    by: int | None = Field(default=None, description="incr: the amount (default 1, may be negative).")


class TxnIn(StrictIn):
    compare: list[CompareIn] = Field(default=[], description="All must hold for success to run.")
    success: list[TxnOpIn] = Field(default=[], description="Run when every compare holds (etcd's then).")
    failure: list[TxnOpIn] = Field(default=[], description="Run otherwise (etcd's else).")


class TxnOpOut(Schema):
    op: str
    key: str
    found: bool | None = None
    value: Any = None
    version: int | None = None
    revision: int | None = None


class TxnOut(Schema):
    succeeded: bool
    revision: int = Field(description="The revision the txn committed as (the current one if it only read).")
    results: list[TxnOpOut]


class IncrIn(StrictIn):
    by: int = Field(default=1, description="The amount to add (may be negative).")
    ttl: int | None = Field(
        default=None, description="Seconds until the key expires; omitted: keep its expiry."
    )


class IncrOut(Schema):
    key: str
    value: int
    version: int
    revision: int


class WatchOut(Schema):
    items: list[ChangeOut] = Field(description="Changes after `since`, in revision order.")
    revision: int = Field(
        description="Pass as ?since= to continue: every change up to it has been delivered."
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
