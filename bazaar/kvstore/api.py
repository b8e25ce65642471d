"""Kvstore JSON API (mounted under /api/kv/ by bazaar.config.api).

Tenant endpoints (``/keys…``, ``/batch``, ``/import``) take a tenant API key: ``Authorization: Bearer kv_…``.
Staff endpoints (``/tenants…``) take a staff user's token or session and manage tenants and their keys.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from ninja import Router, Status

from bazaar.accounts.auth import staff_auth
from bazaar.core.codes import CoreCode, answers
from bazaar.core.errors import ValidationFailed
from bazaar.core.schemas import Int64, Line
from bazaar.kvstore import selectors, services, watch
from bazaar.kvstore.auth import principal, tenant_key
from bazaar.kvstore.cache import CACHE_CONTROL, CONTENT_TYPE, etag, etag_matches
from bazaar.kvstore.codes import Code
from bazaar.kvstore.models import Tenant
from bazaar.kvstore.schemas import (
    ApiKeyCreatedOut,
    ApiKeyIn,
    ApiKeyOut,
    BatchIn,
    BatchOut,
    EntryOut,
    IncrIn,
    IncrOut,
    KvHistoryOut,
    KvImportOut,
    ListOut,
    SetIn,
    TenantIn,
    TenantOut,
    TxnIn,
    TxnOut,
    WatchOut,
    WriteOut,
    write_body,
)

router = Router(tags=["kvstore"])


@router.get(
    "/keys", auth=tenant_key, response={200: ListOut}, summary="List keys in key order (cursor paging)"
)
@answers({422: [CoreCode.INVALID_CURSOR, CoreCode.INVALID_LIMIT]})
def list_keys(
    request: HttpRequest, prefix: Line = "", limit: Int64 | None = None, cursor: Line | None = None
) -> HttpResponse:
    body = selectors.entry_list(
        tenant_id=principal(request).tenant_id, prefix=prefix, limit=limit, cursor=cursor
    )
    return HttpResponse(body, content_type=CONTENT_TYPE)


@router.get(
    "/keys/{path:key}/history",
    auth=tenant_key,
    response={200: KvHistoryOut},
    summary="A key's past values and versions, newest first (paged by revision)",
)
@answers({422: [Code.INVALID_KEY, CoreCode.INVALID_LIMIT, Code.INVALID_REVISION]})
def key_history(
    request: HttpRequest, key: str, limit: Int64 | None = None, before: Int64 | None = None
) -> dict[str, Any]:
    # Registered before GET /keys/{key}: a path ending in /history is this endpoint (the fast path skips it too).
    return selectors.key_history(tenant_id=principal(request).tenant_id, key=key, limit=limit, before=before)


@router.post(
    "/keys/{path:key}/incr", auth=tenant_key, response={200: IncrOut}, summary="Add to a counter atomically"
)
@answers(
    {
        404: [Code.TENANT_NOT_FOUND],  # the tenant deleted while this write ran (RACE_ONLY)
        409: [Code.COUNTER_OVERFLOW, Code.NOT_A_NUMBER],
        422: [Code.INVALID_INCREMENT, Code.INVALID_KEY, Code.INVALID_TTL],
    }
)
def incr_key(request: HttpRequest, key: str, payload: IncrIn) -> HttpResponse:
    out = services.entry_incr(tenant_id=principal(request).tenant_id, key=key, by=payload.by, ttl=payload.ttl)
    response = HttpResponse(json.dumps(out), content_type=CONTENT_TYPE)
    response["X-Revision"] = str(out["revision"])
    return response


@router.get(
    "/keys/{path:key}",
    auth=tenant_key,
    response={200: EntryOut, 304: None},
    summary="Get a key (ETag = version; If-None-Match gives 304)",
)
@answers({404: [Code.KEY_NOT_FOUND], 422: [Code.INVALID_KEY]})
def get_key(request: HttpRequest, key: str) -> HttpResponse:
    read = selectors.entry_get(tenant_id=principal(request).tenant_id, key=key)
    tag = etag(read.version)
    if etag_matches(request.META.get("HTTP_IF_NONE_MATCH"), tag):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(read.body, content_type=CONTENT_TYPE)
    response["ETag"] = tag
    response["Cache-Control"] = CACHE_CONTROL
    response["X-Cache"] = "hit" if read.hit else "miss"
    response["X-Revision"] = str(read.revision)
    return response


@router.put("/keys/{path:key}", auth=tenant_key, response={200: WriteOut}, summary="Set a key (TTL, CAS)")
@answers(
    {
        404: [Code.TENANT_NOT_FOUND],  # the tenant deleted while this write ran (RACE_ONLY)
        409: [Code.VERSION_CONFLICT],
        413: [Code.VALUE_TOO_LARGE],
        422: [Code.INVALID_IF_VERSION, Code.INVALID_KEY, Code.INVALID_TTL, Code.INVALID_VALUE],
    }
)
def put_key(request: HttpRequest, key: str, payload: SetIn) -> HttpResponse:
    # The plain case is answered before Django by bazaar.kvstore.fast.fast_put (the same service call).
    result = services.entry_set(
        tenant_id=principal(request).tenant_id,
        key=key,
        value=payload.value,
        ttl=payload.ttl,
        if_version=payload.if_version,
    )
    response = HttpResponse(json.dumps(write_body(result)), content_type=CONTENT_TYPE)
    response["ETag"] = etag(result.version)
    response["X-Revision"] = str(result.revision)
    return response


@router.delete("/keys/{path:key}", auth=tenant_key, response={204: None}, summary="Delete a key")
@answers(
    {
        404: [Code.KEY_NOT_FOUND, Code.TENANT_NOT_FOUND],  # tenant: deleted meanwhile (RACE_ONLY)
        409: [Code.VERSION_CONFLICT],
        422: [Code.INVALID_IF_VERSION, Code.INVALID_KEY],
    }
)
def delete_key(request: HttpRequest, key: str, if_version: Int64 | None = None) -> HttpResponse:
    result = services.entry_delete(tenant_id=principal(request).tenant_id, key=key, if_version=if_version)
    response = HttpResponse(status=204)
    response["X-Revision"] = str(result.revision)
    return response


@router.post(
    "/txn",
    auth=tenant_key,
    response={200: TxnOut},
    summary="Compares, then success or failure ops: all or none",
)
@answers(
    {
        404: [Code.KEY_NOT_FOUND, Code.TENANT_NOT_FOUND],  # tenant: deleted meanwhile (RACE_ONLY)
        409: [Code.COUNTER_OVERFLOW, Code.NOT_A_NUMBER],
        413: [Code.VALUE_TOO_LARGE],
        422: [
            Code.DUPLICATE_KEY,
            Code.INVALID_COMPARE,
            Code.INVALID_INCREMENT,
            Code.INVALID_KEY,
            Code.INVALID_OP,
            Code.INVALID_TTL,
            Code.INVALID_VALUE,
            Code.MISSING_VALUE,
            Code.TOO_MANY_OPS,
        ],
    }
)
def txn(request: HttpRequest, payload: TxnIn) -> HttpResponse:
    now = timezone.now()
    compare, success, failure = services.txn_parse(
        [c.model_dump() for c in payload.compare],
        [o.model_dump(exclude_unset=True) for o in payload.success],
        [o.model_dump(exclude_unset=True) for o in payload.failure],
        now=now,
    )
    result = services.txn_apply(
        tenant_id=principal(request).tenant_id, compare=compare, success=success, failure=failure, now=now
    )
    body = {"succeeded": result.succeeded, "revision": result.revision, "results": result.results}
    response = HttpResponse(json.dumps(body), content_type=CONTENT_TYPE)
    response["X-Revision"] = str(result.revision)
    return response


@router.get(
    "/watch",
    auth=tenant_key,
    response={200: WatchOut},
    summary="Changes after a revision: a long-poll batch, or server-sent events with Accept: text/event-stream",
    openapi_extra={
        "responses": {
            200: {
                "description": "A batch (JSON) or, for Accept: text/event-stream, one `change` event per change.",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/WatchOut"}},
                    "text/event-stream": {"schema": {"type": "string"}},
                },
            }
        }
    },
)
@answers(
    {
        410: [Code.REVISION_COMPACTED],
        422: [CoreCode.INVALID_LIMIT, Code.INVALID_REVISION, Code.INVALID_WAIT],
        503: [Code.WATCH_BUSY],
    }
)
def watch_changes(
    request: HttpRequest, since: Int64 = 0, prefix: Line = "", wait: Int64 = 0, limit: Int64 | None = None
) -> HttpResponseBase:
    tenant_id = principal(request).tenant_id
    if "text/event-stream" in request.META.get("HTTP_ACCEPT", ""):
        last = request.META.get("HTTP_LAST_EVENT_ID", "")
        start = int(last) if last.isdigit() and len(last) < 19 else since
        stream = StreamingHttpResponse(
            watch.event_stream(tenant_id=tenant_id, since=start, prefix=prefix),
            content_type="text/event-stream",
        )
        stream["Cache-Control"] = "no-cache"
        stream["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
        return stream
    if not 0 <= wait <= 60:
        raise ValidationFailed("wait must be between 0 and 60 seconds.", code="invalid_wait")
    page = watch.long_poll(tenant_id=tenant_id, since=since, prefix=prefix, wait=wait, limit=limit)
    response = HttpResponse(watch.page_body(page), content_type=CONTENT_TYPE)
    response["X-Revision"] = str(page["revision"])
    return response


@router.post("/batch", auth=tenant_key, response={200: BatchOut}, summary="Several sets/deletes, all or none")
@answers(
    {
        404: [Code.KEY_NOT_FOUND, Code.TENANT_NOT_FOUND],  # tenant: deleted meanwhile (RACE_ONLY)
        409: [Code.VERSION_CONFLICT],
        413: [Code.VALUE_TOO_LARGE],
        422: [
            Code.BATCH_TOO_LARGE,
            Code.DUPLICATE_KEY,
            Code.EMPTY_BATCH,
            Code.INVALID_IF_VERSION,
            Code.INVALID_KEY,
            Code.INVALID_OP,
            Code.INVALID_TTL,
            Code.INVALID_VALUE,
            Code.MISSING_VALUE,
        ],
    }
)
def batch(request: HttpRequest, payload: BatchIn) -> dict[str, Any]:
    now = timezone.now()
    ops = services.batch_ops([op.model_dump(exclude_unset=True) for op in payload.ops], now=now)
    results = services.batch_apply(tenant_id=principal(request).tenant_id, ops=ops, now=now)
    return {"results": [write_body(r) for r in results]}


@router.post(
    "/import",
    auth=tenant_key,
    response={200: KvImportOut},
    summary="Import JSON lines (all or nothing)",
    openapi_extra={"requestBody": {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
@answers(
    {
        404: [Code.TENANT_NOT_FOUND],  # the tenant deleted while this write ran (RACE_ONLY)
        413: [Code.VALUE_TOO_LARGE],
        422: [
            Code.DUPLICATE_KEY,
            Code.INVALID_ENCODING,
            Code.INVALID_KEY,
            Code.INVALID_RECORD,
            CoreCode.INVALID_TEXT,
            Code.INVALID_TTL,
            Code.INVALID_VALUE,
        ],
    }
)
def import_lines(request: HttpRequest) -> dict[str, Any]:
    # The body is received whole first, into a spool file (on disk beyond SPOOL_IN_MEMORY: memory stays flat; an
    # import may be MAX_UPLOAD_BYTES, whose declared length BodySizeLimitMiddleware checked). entries_import takes
    # the tenant's lock while it still parses, and must not hold it for as long as a slow client uploads.
    with _spooled(request) as body:
        count = services.entries_import(tenant_id=principal(request).tenant_id, records=_records(body))
    return {"imported": count}


#: An import's body is kept in memory up to this size, in a temporary file beyond it.
SPOOL_IN_MEMORY = 8 << 20


def _spooled(stream: Any, chunk: int = 1 << 20) -> IO[bytes]:
    """The whole of ``stream`` (a request body), read in chunks into a spooled temporary file, rewound."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - the caller closes it
    try:
        while block := stream.read(chunk):
            spool.write(block)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


def _lines(stream: Any, chunk: int = 1 << 16) -> Iterator[bytes]:
    """The lines of ``stream``, read in fixed-size chunks (servers' ``readline`` on the request body differ)."""
    pending = b""
    while block := stream.read(chunk):
        *complete, pending = (pending + block).split(b"\n")
        yield from complete
    if pending:
        yield pending


def _records(stream: Any) -> Iterator[Any]:
    """One JSON document per non-blank line of ``stream`` (ValidationFailed names the line)."""
    for n, raw in enumerate(_lines(stream), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationFailed(
                "The import is not valid UTF-8.",
                code="invalid_encoding",
                details={"line": n, "byte": exc.start},
            )
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except (ValueError, RecursionError):
            raise ValidationFailed(f"Line {n} is not JSON.", code="invalid_record", details={"line": n})


# --- staff: tenants and their API keys --------------------------------------------------------------


@router.get("/tenants", auth=staff_auth, response=list[TenantOut], summary="List tenants (staff)")
def list_tenants(request: HttpRequest) -> Any:
    return list(selectors.tenant_list())


@router.post("/tenants", auth=staff_auth, response={201: TenantOut}, summary="Create a tenant (staff)")
@answers({409: [Code.TENANT_EXISTS], 422: [Code.INVALID_SLUG]})
def create_tenant(request: HttpRequest, payload: TenantIn) -> Status[Tenant]:
    return Status(201, services.tenant_create(slug=payload.slug, name=payload.name))


@router.get(
    "/tenants/{slug}/keys", auth=staff_auth, response=list[ApiKeyOut], summary="List API keys (staff)"
)
@answers({404: [Code.TENANT_NOT_FOUND]})
def list_api_keys(request: HttpRequest, slug: Line) -> Any:
    return list(selectors.apikey_list(tenant_id=selectors.tenant_by_slug(slug).pk))


@router.post(
    "/tenants/{slug}/keys",
    auth=staff_auth,
    response={201: ApiKeyCreatedOut},
    summary="Create an API key (staff)",
)
@answers({404: [Code.TENANT_NOT_FOUND]})
def create_api_key(request: HttpRequest, slug: Line, payload: ApiKeyIn) -> Status[dict[str, Any]]:
    issued = services.apikey_create(tenant_id=selectors.tenant_by_slug(slug).pk, name=payload.name)
    data = ApiKeyOut.from_orm(issued.key).dict()
    return Status(201, {**data, "secret": issued.secret})


@router.delete(
    "/tenants/{slug}/keys/{int:key_id}",
    auth=staff_auth,
    response=ApiKeyOut,
    summary="Revoke an API key (staff)",
)
@answers({404: [Code.KEY_NOT_FOUND, Code.TENANT_NOT_FOUND]})
def revoke_api_key(request: HttpRequest, slug: Line, key_id: Int64) -> Any:
    return services.apikey_revoke(key_id=key_id, tenant_id=selectors.tenant_by_slug(slug).pk)
