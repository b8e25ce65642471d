"""What a batched asynchronous write path in Python could reach for a KV PUT: the ``async_batch`` side of
``kv_put_floor.py``.

Not Bazaar: no Django, no validation beyond "a JSON object with ``value``", no change feed beyond what the statement
itself writes, no TTL, no CAS, no error answers beyond 400/401. It measures one design question of issue 21: if
each worker were one asyncio loop (granian ASGI) whose PUTs wait while one batch is in flight and then go together,
how much of a PUT's interpreter time would be left per request?

* Every PUT arriving while a batch is in flight joins the next one (at most ``MAX_BATCH``, a key at most once);
  a batch is one Redis ``MGET`` of the API keys' validity flags Bazaar keeps, **Bazaar's own grouped statement**
  (``entries._PUT_GROUP``: the revision bump, the upserts and the change rows, one autocommitted statement, passed
  in ``KV_FLOOR_PUT_SQL``), then one Redis pipeline raising each key's generation (what the invalidation does),
  and only then are its writers answered: every answer follows its commit.
* One PostgreSQL connection and one Redis client per worker; a batch's statement holds the tenant row until its
  commit, as Bazaar's does.

Configured from the environment: ``REDIS_URL``, ``DATABASE_URL`` (PostgreSQL), ``BAZAAR_CACHE_PREFIX``,
``KV_FLOOR_TENANT`` (the tenant id of the keys), ``KV_FLOOR_PUT_SQL``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.kv_get_floor_app import PATH, http_only

MAX_BATCH = 64


class _Batcher:
    """The per-worker state: the clients, the writers waiting for the next batch, whether one is in flight."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, str, asyncio.Future[bytes | None]]] = []
        self.digests: set[str] = set()
        self.busy = False
        self.redis: Any = None
        self.pg: Any = None
        self.prefix = os.environ.get("BAZAAR_CACHE_PREFIX", "bazaar")
        self.tenant = int(os.environ["KV_FLOOR_TENANT"])
        self.statement = os.environ["KV_FLOOR_PUT_SQL"]
        self.batches = 0
        self.writes = 0

    async def clients(self) -> None:
        if self.redis is None:
            import redis.asyncio

            self.redis = redis.asyncio.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1.0)
        if self.pg is None:
            import psycopg

            self.pg = await psycopg.AsyncConnection.connect(
                os.environ["DATABASE_URL"], autocommit=True, prepare_threshold=0
            )

    def submit(self, digest: str, key: str, value_json: str) -> asyncio.Future[bytes | None]:
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self.pending.append((key, value_json, future))
        self.digests.add(digest)
        if not self.busy:
            self.busy = True
            asyncio.get_running_loop().create_task(self._drain())
        return future

    async def _drain(self) -> None:
        try:
            await self.clients()
            while self.pending:
                batch: list[tuple[str, str, asyncio.Future[bytes | None]]] = []
                seen: set[str] = set()
                rest: list[tuple[str, str, asyncio.Future[bytes | None]]] = []
                for item in self.pending:
                    if item[0] in seen or len(batch) >= MAX_BATCH:
                        rest.append(item)
                    else:
                        seen.add(item[0])
                        batch.append(item)
                self.pending = rest
                digests, self.digests = list(self.digests), set()
                try:
                    answers = await self._apply(batch, digests)
                except Exception as exc:  # every writer of the batch gets the failure
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (*_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
        finally:
            self.busy = False

    async def _apply(
        self, batch: list[tuple[str, str, asyncio.Future[bytes | None]]], digests: list[str]
    ) -> list[bytes | None]:
        found = await self.redis.mget([f"{self.prefix}:kvstore:apikey:{d}" for d in digests])
        if any(f is None for f in found):  # a flag not cached: PostgreSQL decides, as Bazaar's check does
            cur = await self.pg.execute(
                "SELECT count(*) FROM kvstore_tenantapikey "
                "WHERE digest = ANY(%s) AND tenant_id = %s AND revoked_at IS NULL",
                [digests, self.tenant],
            )
            row = await cur.fetchone()
            if row is None or row[0] != len(
                digests
            ):  # an unknown key among them: refuse the batch (the floor)
                return [None] * len(batch)
        n = len(batch)
        now = datetime.now(UTC)
        cur = await self.pg.execute(
            self.statement,
            [
                n,
                self.tenant,
                [k for k, _, _ in batch],
                [v for _, v, _ in batch],
                [None] * n,
                [now] * n,
                list(range(1, n + 1)),
                self.tenant,
                n,
                self.tenant,
            ],
        )
        rows = {key: (version, revision) for key, version, revision in await cur.fetchall()}
        pipe = self.redis.pipeline(transaction=False)
        for key, _, _ in batch:
            pipe.incr(f"{self.prefix}:kvstore:entry:{self.tenant}:{key}:gen")
        await pipe.execute()
        self.batches += 1
        self.writes += n
        stamp = now.isoformat().replace("+00:00", "Z")
        return [
            json.dumps(
                {
                    "key": key,
                    "version": rows[key][0],
                    "updated_at": stamp,
                    "expires_at": None,
                    "op": "set",
                    "revision": rows[key][1],
                }
            ).encode()
            for key, _, _ in batch
        ]


_batcher: _Batcher | None = None


async def _answer(send: Callable[..., Any], status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def asgi(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    global _batcher
    if not await http_only(scope, receive, send):
        return
    path: str = scope["path"]
    if not path.startswith(PATH) or scope["method"] != "PUT":  # a probe: this worker's batches so far
        stats = {"batches": _batcher.batches, "writes": _batcher.writes} if _batcher else {}
        await _answer(send, 200, json.dumps(stats).encode())
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    authorization = b""
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if type(payload) is not dict or "value" not in payload or not authorization.startswith(b"Bearer "):
        await _answer(send, 400, b'{"code":"malformed_body"}')
        return
    if _batcher is None:
        _batcher = _Batcher()
    digest = hashlib.sha256(authorization[7:]).hexdigest()
    answer = await _batcher.submit(digest, path[len(PATH) :], json.dumps(payload["value"]))
    if answer is None:
        await _answer(send, 401, b'{"code":"unauthorized"}')
        return
    await _answer(send, 200, answer)


class _RawProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive on a bare asyncio Protocol: the request's line, ``Authorization`` and body, nothing
    else (no chunked bodies, no pipelining beyond what arrives whole). The loop reads the socket itself, so a
    request costs no hand-off between threads."""

    def __init__(self, batcher: _Batcher) -> None:
        self.batcher = batcher
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            fields = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            length = int(fields.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, target, _ = head[0].split(" ", 2)
            asyncio.get_running_loop().create_task(self._answer(method, target, fields, body))

    async def _answer(self, method: str, target: str, fields: dict[str, str], body: bytes) -> None:
        status, out = 200, b""
        authorization = fields.get("authorization", "")
        if method == "PUT" and target.startswith(PATH):
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            if type(payload) is not dict or "value" not in payload or not authorization.startswith("Bearer "):
                status, out = 400, b'{"code":"malformed_body"}'
            else:
                digest = hashlib.sha256(authorization[7:].encode()).hexdigest()
                answer = await self.batcher.submit(digest, target[len(PATH) :], json.dumps(payload["value"]))
                status, out = (200, answer) if answer is not None else (401, b'{"code":"unauthorized"}')
        elif method == "GET":
            out = json.dumps({"batches": self.batcher.batches, "writes": self.batcher.writes}).encode()
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized"}[status]
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (status, reason.encode(), len(out), out)
        )


def raw(port: int, workers: int) -> None:
    """``workers`` processes, each one asyncio loop accepting on ``port`` (SO_REUSEPORT)."""
    import socket

    def serve() -> None:
        async def main() -> None:
            batcher = _Batcher()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", port))
            server = await asyncio.get_running_loop().create_server(lambda: _RawProtocol(batcher), sock=sock)
            await server.serve_forever()

        asyncio.run(main())

    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            serve()
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    import sys

    raw(int(sys.argv[1]), int(sys.argv[2]))
