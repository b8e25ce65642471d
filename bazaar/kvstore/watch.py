"""Watch: a long-poll (Consul's blocking query) and server-sent events over the tenant's change log.

The data a watch delivers comes only from the change log in the database (``selectors.changes_since``): a watch
resumes from any retained revision, across app-server restarts, and cannot lose a change between a read and a
watch started from that read's revision. What this module adds is *waking up*: a waiting request sleeps on a
per-process condition until its tenant's revision passes the one it has seen.

Fan-out: one poller thread per process reads the revisions of the tenants that have waiters (one indexed query
every KVSTORE_WATCH_POLL_MS, default 100 ms, only while someone waits) and wakes them. Chosen over Redis
pub/sub and LISTEN/NOTIFY because it costs the write path nothing (a PUT stays one statement and one cache
round trip; a PUBLISH or a NOTIFY would add work to every write, and NOTIFY serialises committing transactions
on a global lock), it works on the embedded SQLite default too, and a lost message is impossible — both other
designs need this poll anyway as a safety net. The price is delivery latency of up to one poll interval.

Threads: the app server is a threaded WSGI server (granian, ``deploy/serve.py``: workers x 4 blocking threads), so
a waiting watcher holds one of those threads. To keep watchers from starving ordinary requests a process lets
at most KVSTORE_WATCH_MAX_WAITING (default 2) requests wait at once; beyond it a long-poll answers at once with
what there is (no wait) and an event stream is refused with 503 ``watch_busy`` and Retry-After.

Watchers at scale: the asynchronous watch server (``bazaar.kvstore.watch_server``, run by ``deploy/serve.py
--watch-port``; nginx routes ``WATCH_PATH`` to it) calls this same view in *deferred* mode (``deferring``): the
view authenticates, validates and reads the first page exactly as here, but instead of sleeping on the hub it
records where it would have waited (``Deferred``) and returns; the server then waits on an asyncio event, which
costs a coroutine and a socket, not a thread or a database connection.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connection

from bazaar.core.errors import DomainError
from bazaar.kvstore import conf, selectors
from bazaar.kvstore.models import Tenant

logger = logging.getLogger(__name__)

# The watch endpoint's path: the API route (``api.py``), the path the watch server serves and the nginx location
# that sends it there (``deploy/stack.py``) are this one string (a test holds the route to it).
WATCH_PATH = "/api/kv/watch"
# Server-sent events: the reconnect delay a stream opens with, and the heartbeat comment of an idle stream.
SSE_RETRY = b"retry: 1000\n\n"
SSE_KEEPALIVE = b": keep-alive\n\n"
SSE_IDLE_SECONDS = 15.0


class WatchBusy(DomainError):
    status = 503
    code = "watch_busy"


def page_body(page: dict[str, Any]) -> bytes:
    """A long-poll answer's body (``WatchOut``); its ``X-Revision`` header is ``page["revision"]``."""
    return json.dumps(page).encode()


def sse_change(item: dict[str, Any]) -> bytes:
    """One change as a server-sent event (``id:`` = its revision, so EventSource resumes with Last-Event-ID)."""
    data = json.dumps(item, separators=(",", ":"))
    return f"id: {item['revision']}\nevent: change\ndata: {data}\n\n".encode()


def sse_error(exc: DomainError) -> bytes:
    """A domain error met while streaming (e.g. compacted under the stream), as the stream's last event."""
    return f"event: error\ndata: {json.dumps(exc.as_dict())}\n\n".encode()


@dataclass
class Deferred:
    """Where a deferred watch would have waited: the tenant, the revision it has seen, and what it follows.
    ``stream`` is True for an event stream (``until`` is then its monotonic end), False for a long-poll."""

    tenant_id: int
    seen: int
    prefix: str
    stream: bool
    until: float = 0.0


_local = threading.local()


@contextmanager
def deferring(*, room: bool = True) -> Iterator[list[Deferred]]:
    """Run the watch view without waiting in this thread (the watch server's mode). The list it yields gets
    the ``Deferred`` of a call that would have waited; ``room=False`` answers as a full server does (a
    long-poll at once, an event stream 503 ``watch_busy``)."""
    out: list[Deferred] = []
    _local.deferred, _local.room = out, room
    try:
        yield out
    finally:
        _local.deferred = _local.room = None


def _deferred() -> list[Deferred] | None:
    return getattr(_local, "deferred", None)


def _room() -> bool:
    return bool(getattr(_local, "room", True))


class _Hub:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.revisions: dict[int, int] = {}
        self.waiting: Counter[int] = Counter()
        self.slots = 0
        self.thread: threading.Thread | None = None

    def acquire(self) -> bool:
        with self.cond:
            if self.slots >= conf.watch_max_waiting():
                return False
            self.slots += 1
            return True

    def release(self) -> None:
        with self.cond:
            self.slots -= 1

    def wait(self, tenant_id: int, above: int, timeout: float) -> bool:
        """Block until the tenant's revision is above ``above`` (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            self.waiting[tenant_id] += 1
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="kv-watch-poller", daemon=True)
                self.thread.start()
            try:
                while self.revisions.get(tenant_id, -1) <= above:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self.cond.wait(left)
                return True
            finally:
                self.waiting[tenant_id] -= 1
                if self.waiting[tenant_id] <= 0:
                    del self.waiting[tenant_id]
                    self.revisions.pop(tenant_id, None)

    def _loop(self) -> None:
        idle_since = time.monotonic()
        try:
            while True:
                with self.cond:
                    ids = sorted(self.waiting)
                if not ids:
                    # Nobody waits: hold no database connection while idle (it would keep a pooler slot, and
                    # a database being dropped, busy for nothing); the next poll opens one again.
                    connection.close()
                    if time.monotonic() - idle_since > 5:
                        return  # restarted by the next waiter
                    time.sleep(conf.watch_poll_ms() / 1000)
                    continue
                idle_since = time.monotonic()
                try:
                    rows = dict(Tenant.objects.filter(pk__in=ids).values_list("pk", "revision"))
                except DatabaseError:
                    connection.close()
                    rows = {}
                except (
                    Exception
                ):  # the poller must outlive any one poll, or every waiter sleeps to its timeout
                    logger.exception("the watch poller's poll failed; polling again")
                    connection.close()
                    rows = {}
                with self.cond:
                    changed = False
                    for pk, revision in rows.items():
                        if self.revisions.get(pk) != revision:
                            self.revisions[pk] = revision
                            changed = True
                    if changed:
                        self.cond.notify_all()
                time.sleep(conf.watch_poll_ms() / 1000)
        finally:
            connection.close()


hub = _Hub()


def long_poll(*, tenant_id: int, since: int, prefix: str, wait: float, limit: int | None) -> dict[str, Any]:
    """Changes after ``since``; when there are none yet, wait up to ``wait`` seconds for one (Consul's blocking
    query). Raises RevisionCompacted (410) and ValidationFailed like ``selectors.changes_since``."""
    page = selectors.changes_since(tenant_id=tenant_id, since=since, prefix=prefix, limit=limit)
    deferred = _deferred()
    if deferred is not None:
        if not page["items"] and wait > 0 and _room():
            until = time.monotonic() + wait
            deferred.append(
                Deferred(tenant_id=tenant_id, seen=page["revision"], prefix=prefix, stream=False, until=until)
            )
        return page
    if page["items"] or wait <= 0 or not hub.acquire():
        return page
    try:
        deadline = time.monotonic() + wait
        seen = page["revision"]
        while not page["items"]:
            left = deadline - time.monotonic()
            if left <= 0 or not hub.wait(tenant_id, seen, left):
                break
            page = selectors.changes_since(tenant_id=tenant_id, since=seen, prefix=prefix, limit=limit)
            seen = page["revision"]
        return page
    finally:
        hub.release()


def event_stream(*, tenant_id: int, since: int, prefix: str) -> Iterator[bytes]:
    """Server-sent events: one ``change`` event per change (``id:`` = its revision, so a reconnecting
    EventSource resumes with Last-Event-ID), a comment as heartbeat, and the stream ends after
    KVSTORE_WATCH_STREAM_SECONDS (the browser reconnects). The first page is read before the response starts,
    so a compacted ``since`` is a 410, not a broken stream. Raises WatchBusy when this process has no room."""
    first = selectors.changes_since(tenant_id=tenant_id, since=since, prefix=prefix)
    deferred = _deferred()
    if deferred is not None and _room():
        # The watch server streams the rest; this call only answers the opening (headers, retry, first page).
        until = time.monotonic() + conf.watch_stream_seconds()
        deferred.append(
            Deferred(tenant_id=tenant_id, seen=first["revision"], prefix=prefix, stream=True, until=until)
        )
        return iter([SSE_RETRY, *(sse_change(item) for item in first["items"])])
    if deferred is not None or not hub.acquire():
        raise WatchBusy("Too many watchers on this server; retry shortly.", details={"retry_after": 1})

    def events() -> Iterator[bytes]:
        try:
            page = first
            end = time.monotonic() + conf.watch_stream_seconds()
            yield SSE_RETRY
            while True:
                for item in page["items"]:
                    yield sse_change(item)
                seen = page["revision"]
                left = end - time.monotonic()
                if left <= 0:
                    return
                if not hub.wait(tenant_id, seen, min(left, SSE_IDLE_SECONDS)):
                    yield SSE_KEEPALIVE
                    if time.monotonic() >= end:
                        return
                page = selectors.changes_since(tenant_id=tenant_id, since=seen, prefix=prefix)
        except DomainError as exc:  # compacted while streaming: tell the client, then end
            yield sse_error(exc)
        finally:
            hub.release()

    return events()
