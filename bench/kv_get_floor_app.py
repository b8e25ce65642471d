"""The least a Python server in front of Redis and PostgreSQL can do for a KV GET: the floor ``kv_get_floor.py`` measures.

Not Bazaar: no Django, no checks beyond "the API key's flag is there", no stored form, no fill. Each request makes
Bazaar's round trips and no more, with Bazaar's client libraries (redis-py with hiredis, psycopg with its C
module): one ``MGET`` of the same four keys Bazaar reads (the cache epoch, the entry's generation, the entry, the
API key's validity flag); the entry found is a hit, answered with its bytes; otherwise a miss, one prepared
``SELECT`` of the row by the unique (tenant, key) index in autocommit, answered as JSON. Two shapes of server:

* ``wsgi``: granian WSGI with blocking threads, as Bazaar's production server (a connection per thread);
* ``asgi``: granian ASGI, one asyncio loop per worker (redis.asyncio, psycopg's AsyncConnection): no threads, so
  no GIL hand-offs between requests.

Configured from the environment: ``REDIS_URL``, ``DATABASE_URL`` (PostgreSQL), ``BAZAAR_CACHE_PREFIX``,
``KV_FLOOR_TENANT`` (the tenant id the keys belong to).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

PATH = "/api/kv/keys/"
STATEMENT = (
    'SELECT "key", value, version, mod_revision FROM kvstore_entry '
    'WHERE tenant_id = %s AND "key" = %s AND (expires_at IS NULL OR expires_at > now())'
)


def _keys(key: str, authorization: bytes) -> list[str]:
    prefix = os.environ.get("BAZAAR_CACHE_PREFIX", "bazaar")
    base = f"{prefix}:kvstore:entry:{_tenant()}:{key}"
    digest = hashlib.sha256(authorization[7:]).hexdigest()
    return [f"{prefix}:epoch", f"{base}:gen", f"{base}:v2", f"{prefix}:kvstore:apikey:{digest}"]


def _tenant() -> int:
    return int(os.environ["KV_FLOOR_TENANT"])


def _row_json(row: tuple[Any, ...] | None) -> tuple[str, bytes]:
    if row is None:
        return "404 Not Found", b'{"code":"key_not_found"}'
    key, value, version, revision = row
    return "200 OK", b'{"key":"%s","value":%s,"version":%d,"revision":%d}' % (
        key.encode(),
        value.encode(),
        version,
        revision,
    )


_local = threading.local()
_redis: Any = None
_redis_lock = threading.Lock()


def _sync_clients() -> tuple[Any, Any]:
    global _redis
    if _redis is None:
        with _redis_lock:
            if _redis is None:
                import redis

                _redis = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=0.25)
    pg = getattr(_local, "pg", None)
    if pg is None:
        import psycopg

        pg = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, prepare_threshold=0)
        _local.pg = pg
    return _redis, pg


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The floor on Bazaar's own server shape (granian WSGI, blocking threads)."""
    path = environ.get("PATH_INFO", "")
    authorization = environ.get("HTTP_AUTHORIZATION", "").encode()
    if not path.startswith(PATH):  # a liveness probe
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    key = path[len(PATH) :]
    r, pg = _sync_clients()
    _epoch, _gen, entry, flag = r.mget(_keys(key, authorization))
    if flag is None:
        start_response("401 Unauthorized", [("Content-Length", "0")])
        return [b""]
    if entry is not None:
        status, body, state = "200 OK", entry, "hit"
    else:
        status, body = _row_json(pg.execute(STATEMENT, (_tenant(), key)).fetchone())
        state = "miss"
    start_response(
        status,
        [("Content-Type", "application/json"), ("X-Cache", state), ("Content-Length", str(len(body)))],
    )
    return [body]


_aredis: Any = None
_apool: list[Any] = []


async def http_only(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> bool:
    """ASGI's lifespan protocol answered (other scopes than HTTP ignored); True for an HTTP request."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return False
    return bool(scope["type"] == "http")


async def asgi(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """The floor on one event loop per worker (granian ASGI): no threads, no GIL hand-offs."""
    global _aredis
    if not await http_only(scope, receive, send):
        return
    path: str = scope["path"]
    if not path.startswith(PATH):  # a liveness probe
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    authorization = dict(scope["headers"]).get(b"authorization", b"")
    if _aredis is None:
        import redis.asyncio

        _aredis = redis.asyncio.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=0.25)
    key = path[len(PATH) :]
    _epoch, _gen, entry, flag = await _aredis.mget(_keys(key, authorization))
    if flag is None:
        status, body, state = "401 Unauthorized", b"", "-"
    elif entry is not None:
        status, body, state = "200 OK", entry, "hit"
    else:
        import psycopg

        pg = _apool.pop() if _apool else None
        if pg is None:
            pg = await psycopg.AsyncConnection.connect(
                os.environ["DATABASE_URL"], autocommit=True, prepare_threshold=0
            )
        try:
            cur = await pg.execute(STATEMENT, (_tenant(), key))
            status, body = _row_json(await cur.fetchone())
        finally:
            _apool.append(pg)
        state = "miss"
    headers = [
        (b"content-type", b"application/json"),
        (b"x-cache", state.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": int(status[:3]), "headers": headers})
    await send({"type": "http.response.body", "body": body})
