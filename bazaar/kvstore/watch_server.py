"""The asynchronous watch server: ``GET /api/kv/watch`` for many idle watchers on one process.

Under the threaded WSGI server a waiting watcher holds a thread, so a process lets only KVSTORE_WATCH_MAX_WAITING
wait (``watch.py``). This ASGI application (granian ``--interface asgi``, started by ``deploy/serve.py
--watch-port``; nginx sends ``watch.WATCH_PATH`` to it) holds a watcher as a coroutine and a socket:

* **The contract is the view's, not a copy.** Each request first runs the real Django stack (the WSGI
  application: middleware, Ninja's bearer auth and query validation, the ``watch_changes`` view, the error
  mapping) in a small thread pool, inside ``watch.deferring()``. The view answers exactly as under WSGI — the
  same status, headers, bytes and error codes — except that where it would sleep on the hub it records a
  ``watch.Deferred`` and returns. Only then does this server wait, on an asyncio future.
* **Waking** is the per-process poll of ``watch.py`` made asynchronous: one poller task reads the revisions of
  the tenants with waiters (one indexed query per KVSTORE_WATCH_POLL_MS, in its own thread with its own database
  connection) and resolves the tenant's future.
* **Reading what changed is shared.** Woken watchers that follow the same tenant, prefix and revision (the
  common case: a thousand dashboards on one prefix) share one ``selectors.changes_since`` read and one encoded
  body; a long-poll answer reuses the headers of the view's own answer with the new body and ``X-Revision``.
  A read that fails with a domain error (compacted while waiting) is answered by running the view again, so a
  410 has the view's bytes.

Database connections are bounded by the view pool (KVSTORE_WATCH_SERVER_THREADS, default 4), the two threads of
the reads after a wake and the poller's one, not by the number of watchers. KVSTORE_WATCH_SERVER_MAX (default 10,000) watchers wait at once; beyond it the view
answers as a full WSGI server does (a long-poll at once, an event stream 503 ``watch_busy``). A client that goes
away is noticed (``http.disconnect``) and stops costing anything. The state is the change log: a restarted watch
server loses nothing; clients resume with ``since`` or ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import DatabaseError, connection

from bazaar.core.errors import DomainError
from bazaar.kvstore import conf, selectors, watch
from bazaar.kvstore.models import Tenant

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes, watch.Deferred | None]
HEALTH_PATH = "/healthz"
# How many watchers this process holds now (JSON; for operators and the benchmark). nginx does not route it.
STATUS_PATH = "/watchz"
WAKE_READ_THREADS = 2  # the reads after a wake (their own threads and connections)
# The watch takes no body; a bigger one is not read (Django answers the method or the size).
MAX_BODY = 1 << 16


def _db(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` in a pool thread; a broken connection is closed so the thread's next call opens a new one."""
    try:
        return fn(*args, **kwargs)
    except DatabaseError:
        connection.close()
        raise


def _revisions(ids: list[int]) -> dict[int, int]:
    return dict(Tenant.objects.filter(pk__in=ids).values_list("pk", "revision"))


class AsyncHub:
    """Waiters per tenant, woken by one poller task (``watch._Hub`` without threads)."""

    def __init__(self, read: Callable[[list[int]], Awaitable[dict[int, int]]]) -> None:
        self.read = read
        self.revisions: dict[int, int] = {}
        self.futures: dict[int, asyncio.Future[None]] = {}
        self.waiting: Counter[int] = Counter()
        self.task: asyncio.Task[None] | None = None
        self.polls = 0

    async def wait(self, tenant_id: int, above: int, timeout: float, gone: asyncio.Future[Any]) -> bool:
        """Until the tenant's revision is above ``above`` (True), ``timeout`` seconds pass or ``gone`` is done
        (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.waiting[tenant_id] += 1
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._poll())
        try:
            while self.revisions.get(tenant_id, -1) <= above:
                left = deadline - loop.time()
                if left <= 0 or gone.done():
                    return False
                future = self.futures.get(tenant_id)
                if future is None:
                    future = self.futures[tenant_id] = loop.create_future()
                await asyncio.wait((future, gone), timeout=left, return_when=asyncio.FIRST_COMPLETED)
            return True
        finally:
            self.waiting[tenant_id] -= 1
            if self.waiting[tenant_id] <= 0:
                del self.waiting[tenant_id]
                self.revisions.pop(tenant_id, None)
                self.futures.pop(tenant_id, None)

    async def _poll(self) -> None:
        idle_since = time.monotonic()
        while True:
            await asyncio.sleep(conf.watch_poll_ms() / 1000)
            ids = sorted(self.waiting)
            if not ids:
                if time.monotonic() - idle_since > 5:
                    return  # restarted by the next waiter
                continue
            idle_since = time.monotonic()
            try:
                rows = await self.read(ids)
            except Exception:  # a database outage: waiters time out as usual; the next poll retries
                log.warning("watch poll failed", exc_info=True)
                continue
            self.polls += 1
            for pk, revision in rows.items():
                if pk in self.waiting and self.revisions.get(pk) != revision:
                    self.revisions[pk] = revision
                    future = self.futures.pop(pk, None)
                    if future is not None and not future.done():
                        future.set_result(None)


def _environ(scope: Scope, query: str, body: bytes) -> dict[str, Any]:
    """The WSGI environ of an ASGI HTTP request (PEP 3333: text as latin-1, the path decoded)."""
    server = scope.get("server") or ("127.0.0.1", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        key = name if name in ("CONTENT_LENGTH", "CONTENT_TYPE") else f"HTTP_{name}"
        value = raw_value.decode("latin-1")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def _with_since(query: str, since: int) -> str:
    pairs = [(k, v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k != "since"]
    return urllib.parse.urlencode([*pairs, ("since", str(since))])


def _replace(headers: list[tuple[bytes, bytes]], **values: bytes) -> list[tuple[bytes, bytes]]:
    names = {k.replace("_", "-").lower().encode(): v for k, v in values.items()}
    return [(k, v) for k, v in headers if k.lower() not in names] + list(names.items())


class WatchServer:
    """The ASGI application. ``wsgi`` is the site's WSGI application (``bazaar.config.wsgi.application``)."""

    def __init__(self, wsgi: Callable[..., Any]) -> None:
        self.wsgi = wsgi
        self.pool = ThreadPoolExecutor(conf.watch_server_threads(), thread_name_prefix="kv-watch")
        self.poller = ThreadPoolExecutor(1, thread_name_prefix="kv-watch-poll")
        # The reads after a wake have threads of their own: queued behind a burst of openings (view calls) in
        # the pool above, every woken stream would wait for them (measured: seconds of head-of-line delay).
        self.readers = ThreadPoolExecutor(WAKE_READ_THREADS, thread_name_prefix="kv-watch-read")
        self.hub = AsyncHub(self._read_revisions)
        self.held = 0
        self.reads: dict[
            tuple[int, int, str, int | None, bool], asyncio.Future[tuple[dict[str, Any], bytes]]
        ] = {}

    async def _read_revisions(self, ids: list[int]) -> dict[int, int]:
        loop = asyncio.get_running_loop()
        result: dict[int, int] = await loop.run_in_executor(self.poller, _db, _revisions, ids)
        return result

    # --- the view, run in a pool thread -------------------------------------------------------------------

    def _django(self, environ: dict[str, Any], room: bool) -> Answer:
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            started[:] = [status, headers]

        with watch.deferring(room=room) as deferred:
            result = self.wsgi(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()  # request_finished: the thread's connection is kept or closed as after any request
        status, headers = started
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return int(status.split(" ", 1)[0]), raw, body, deferred[0] if deferred else None

    async def _view(self, scope: Scope, query: str, body: bytes) -> Answer:
        loop = asyncio.get_running_loop()
        room = self.held < conf.watch_server_max()
        answer: Answer = await loop.run_in_executor(
            self.pool, self._django, _environ(scope, query, body), room
        )
        return answer

    def _changes(self, d: watch.Deferred, limit: int | None) -> tuple[dict[str, Any], bytes]:
        page = _db(selectors.changes_since, tenant_id=d.tenant_id, since=d.seen, prefix=d.prefix, limit=limit)
        if d.stream:
            return page, b"".join(watch.sse_change(item) for item in page["items"])
        return page, watch.page_body(page)

    async def _shared_changes(self, d: watch.Deferred, limit: int | None) -> tuple[dict[str, Any], bytes]:
        """``selectors.changes_since`` after a wake, one read for every watcher asking the same thing."""
        key = (d.tenant_id, d.seen, d.prefix, limit, d.stream)
        future = self.reads.get(key)
        if future is None:
            future = asyncio.get_running_loop().run_in_executor(self.readers, self._changes, d, limit)
            self.reads[key] = future
            future.add_done_callback(lambda _f: self.reads.pop(key, None))
        return await asyncio.shield(future)

    # --- ASGI ---------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == STATUS_PATH:
            counts = {"held": self.held, "tenants": len(self.hub.waiting), "polls": self.hub.polls}
            await _answer(send, 200, [(b"content-type", b"application/json")], json.dumps(counts).encode())
            return
        if scope["path"] not in (watch.WATCH_PATH, HEALTH_PATH):
            body = b'{"code": "not_found", "message": "This server answers only the watch.", "details": {}}'
            await _answer(send, 404, [(b"content-type", b"application/json")], body)
            return
        request_body = await _read_body(receive)
        query = scope.get("query_string", b"").decode("latin-1")
        status, headers, body, deferred = await self._view(scope, query, request_body)
        if deferred is None:
            await _answer(send, status, headers, body)
            return
        gone: asyncio.Future[Any] = asyncio.ensure_future(_disconnected(receive))
        self.held += 1
        try:
            if deferred.stream:
                await self._stream(send, status, headers, body, deferred, gone)
            else:
                await self._long_poll(scope, query, send, (status, headers, body, deferred), gone)
        finally:
            self.held -= 1
            gone.cancel()

    async def _long_poll(
        self, scope: Scope, query: str, send: Send, answer: Answer, gone: asyncio.Future[Any]
    ) -> None:
        status, headers, body, d = answer
        assert d is not None
        limit = _limit(query)
        while d is not None:
            left = d.until - time.monotonic()
            if left <= 0 or not await self.hub.wait(d.tenant_id, d.seen, left, gone):
                break
            try:
                page, new_body = await self._shared_changes(d, limit)
            except DomainError:  # compacted while waiting: the view answers it (410 with where to resume)
                status, headers, body, _ = await self._view(scope, _with_since(query, d.seen), b"")
                break
            headers = _replace(
                headers, content_length=str(len(new_body)).encode(), x_revision=str(page["revision"]).encode()
            )
            body = new_body
            d = (
                None
                if page["items"]
                else watch.Deferred(d.tenant_id, page["revision"], d.prefix, False, d.until)
            )
        if not gone.done():
            await _answer(send, status, headers, body)

    async def _stream(
        self,
        send: Send,
        status: int,
        headers: list[tuple[bytes, bytes]],
        opening: bytes,
        d: watch.Deferred,
        gone: asyncio.Future[Any],
    ) -> None:
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": opening, "more_body": True})
            while not gone.done():
                left = d.until - time.monotonic()
                if left <= 0:
                    break
                if not await self.hub.wait(d.tenant_id, d.seen, min(left, watch.SSE_IDLE_SECONDS), gone):
                    if not gone.done():
                        await send(
                            {"type": "http.response.body", "body": watch.SSE_KEEPALIVE, "more_body": True}
                        )
                    continue
                try:
                    page, events = await self._shared_changes(d, None)
                except DomainError as exc:
                    await send(
                        {"type": "http.response.body", "body": watch.sse_error(exc), "more_body": True}
                    )
                    break
                if events:
                    await send({"type": "http.response.body", "body": events, "more_body": True})
                d = watch.Deferred(d.tenant_id, page["revision"], d.prefix, True, d.until)
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (OSError, RuntimeError, DatabaseError):  # the client went away, or the database did: the
            log.info("watch stream ended early", exc_info=True)  # client resumes from its Last-Event-ID

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.poller.shutdown(wait=False, cancel_futures=True)
                self.readers.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _limit(query: str) -> int | None:
    # Already validated by the view (an Int64, or absent) when a watch was deferred.
    values = urllib.parse.parse_qs(query).get("limit")
    return int(values[-1]) if values else None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        if size < MAX_BODY:
            chunks.append(chunk[: MAX_BODY - size])
        size += len(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
