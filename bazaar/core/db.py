"""A sick database fails fast: a client-side deadline on every PostgreSQL round trip, and a breaker.

PostgreSQL's own ``statement_timeout`` (set on every connection, ``DATABASE_STATEMENT_TIMEOUT``) ends a slow
query, and TCP keepalives end a connection whose peer vanished. Neither helps when the server is *paused* (a stuck
disk, a frozen VM, SIGSTOP): the server cannot enforce its timeout, and the peer's kernel still acknowledges every
packet and keepalive probe, so a query on a kept-alive connection would wait as long as the pause lasts — and every
worker thread with it, until even cached pages queue behind them. So:

- every statement, COMMIT and ROLLBACK carries a client-side deadline (``DATABASE_CLIENT_TIMEOUT``): one watchdog
  thread per process shuts the connection's socket down when a round trip outlives it; psycopg then raises
  ``OperationalError`` at once, the request answers 503 ``database_unavailable`` (core.middleware / config.api),
  and Django replaces the broken connection at the end of the request;
- a breaker (``DATABASE_BREAKER_SECONDS``): after a cut or a failed connection attempt, statements and new
  connections fail at once for a moment, then one probe at a time is let through — so during a pause at most one
  thread per process waits for the deadline;
- new connections are bounded by ``connect_timeout``.

The guards live in Bazaar's PostgreSQL backend (``bazaar.core.postgres``, the ENGINE whenever DATABASE_URL is
PostgreSQL). Bulk jobs whose single statements legitimately run long (a million-row COPY) wrap them in
``long_statements()``.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection

log = logging.getLogger("bazaar.db")

#: Seconds a round trip in this context may take before its connection is cut; None: DATABASE_CLIENT_TIMEOUT.
_deadline: ContextVar[float | None] = ContextVar("bazaar_db_deadline", default=None)
#: True in a health probe: it always asks the database (a success closes the breaker), whatever the breaker says.
_probing: ContextVar[bool] = ContextVar("bazaar_db_probe", default=False)


class _Watchdog:
    """One daemon thread per process: cuts the sockets of round trips past their deadline."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int]] = []  # (deadline, token, fd)
        self._live: set[int] = set()
        self._cond = threading.Condition()
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self.cut = 0  # round trips cut so far (tests, logs)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="bazaar-db-watchdog", daemon=True)
            self._thread.start()

    def _forked(self) -> None:
        """In a forked child (``os.register_at_fork``): the parent's thread did not come along, and its lock may
        have been held by another of the parent's threads. Asking ``os.getpid()`` on every round trip instead cost
        a system call per statement."""
        self._heap, self._live, self._thread = [], set(), None
        self._cond = threading.Condition()

    def watch(self, fd: int, seconds: float) -> int:
        with self._cond:
            self._ensure_thread()
            token = next(self._tokens)
            deadline = time.monotonic() + seconds
            # The thread sleeps until the earliest deadline in the heap (with none, until notified): it needs
            # waking only for a deadline that comes first. Round trips share one timeout, so that is rare, and a
            # statement costs no thread switch. Finished ones stay in the heap until they surface or a compaction.
            wake = not self._heap or deadline < self._heap[0][0]
            if len(self._heap) > 4 * len(self._live) + 1024:
                self._heap = [entry for entry in self._heap if entry[1] in self._live]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (deadline, token, fd))
            self._live.add(token)
            if wake:
                self._cond.notify()
            return token

    def done(self, token: int) -> bool:
        """Stop watching; False when the watchdog had already cut this round trip."""
        with self._cond:
            if token in self._live:
                self._live.discard(token)
                return True
            return False

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                # A round trip outlived the server's own statement_timeout by a second: the server is not
                # answering at all, so every round trip in flight is cut with it, not each at its own deadline.
                doomed = [entry for entry in self._heap if entry[1] in self._live]
                self._heap, self._live = [], set()
                self.cut += len(doomed)
            log.error("database round trip past its deadline: %d connection(s) cut", len(doomed))
            for _, _, doomed_fd in doomed:
                _shutdown(doomed_fd)


def _shutdown(fd: int) -> None:
    """Shut the socket down (both directions) without closing the descriptor psycopg still owns."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=WATCHDOG._forked)


class Breaker:
    """Per process: after a cut or a failed connection attempt the database counts as "not answering" for
    DATABASE_BREAKER_SECONDS, and every statement and connection attempt fails at once; then one probe at a time
    is let through: success closes the breaker, another failure opens it again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._probing = False

    def allow(self) -> bool:
        """Whether this caller may use the database now (it may be the one probe of a half-open breaker)."""
        if not self._open_until or _probing.get():
            return True
        with self._lock:
            if not self._open_until:
                return True
            if time.monotonic() < self._open_until or self._probing:
                return False
            self._probing = True
            return True

    def failed(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + float(settings.DATABASE_BREAKER_SECONDS)
            self._probing = False

    def release(self) -> None:
        """A probe ended without a verdict (refused at once, interrupted): the next caller may probe."""
        if self._probing:
            with self._lock:
                self._probing = False

    def succeeded(self) -> None:
        if self._open_until or self._probing:
            with self._lock:
                self._open_until, self._probing = 0.0, False

    @property
    def is_open(self) -> bool:
        return bool(self._open_until)


BREAKER = Breaker()
# A forked child starts with the breaker's state, and with a lock that another of the parent's threads may have held.
os.register_at_fork(after_in_child=lambda: setattr(BREAKER, "_lock", threading.Lock()))


def unavailable(fd: int = -1) -> OperationalError:
    """The error raised while the breaker is open. ``fd``'s socket is cut too, so the ROLLBACK that follows fails
    at once (Django then closes the connection) instead of waiting on the hung server."""
    if fd >= 0:
        _shutdown(fd)
    return OperationalError(
        "The database is not answering (a recent round trip timed out); try again shortly."
    )


def _client_timeout() -> float:
    override = _deadline.get()
    return float(settings.DATABASE_CLIENT_TIMEOUT) if override is None else override


def socket_of(wrapper: Any) -> int:
    """The file descriptor of a Django connection's PostgreSQL socket, or -1."""
    pg = getattr(wrapper, "connection", None)
    if pg is None or pg.closed:
        return -1
    return int(pg.pgconn.socket)


def spoke_first(fd: int) -> bool:
    """Whether an idle connection's socket ``fd`` has something to read. With no query in flight the server speaks
    first only when it ends the session (a shutdown, a terminated backend: an error message, then end of file) or,
    rarely, to report a changed setting. One poll, no round trip."""
    if fd < 0:
        return False
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


@contextlib.contextmanager
def watched(fd: int) -> Iterator[None]:
    """One round trip on the socket ``fd`` under the client deadline and the breaker."""
    seconds = _client_timeout()
    if fd < 0 or seconds <= 0:
        yield
        return
    if not BREAKER.allow():
        raise unavailable(fd)
    token = WATCHDOG.watch(fd, seconds)
    try:
        yield
    except DatabaseError:
        if WATCHDOG.done(token):
            BREAKER.succeeded()  # the server answered, with an error of its own
        else:
            BREAKER.failed()  # cut: the server did not answer in time
        raise
    except BaseException:
        WATCHDOG.done(token)
        BREAKER.release()
        raise
    WATCHDOG.done(token)
    BREAKER.succeeded()


def guard(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """The execute wrapper on every PostgreSQL connection (``bazaar.core.postgres``)."""
    with watched(socket_of(context["connection"])):
        return execute(sql, params, many, context)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Round trips in this block get ``seconds`` (0: no client deadline) instead of DATABASE_CLIENT_TIMEOUT."""
    token = _deadline.set(seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


@contextlib.contextmanager
def probe(seconds: float) -> Iterator[None]:
    """A health probe (/readyz): round trips get ``seconds`` and go to the database even while the breaker is
    open, so the probe reports what the database does now, and its success closes the breaker."""
    token = _probing.set(True)
    try:
        with deadline(seconds):
            yield
    finally:
        _probing.reset(token)


@contextlib.contextmanager
def long_statements(seconds: int | None = None) -> Iterator[None]:
    """For a bulk job's statements (COPY, set-based INSERT of a million rows): lift the client deadline and raise
    the server's ``statement_timeout`` to DATABASE_BULK_STATEMENT_TIMEOUT for the current transaction only."""
    limit = int(settings.DATABASE_BULK_STATEMENT_TIMEOUT if seconds is None else seconds)
    with deadline(0):
        if connection.vendor == "postgresql" and connection.in_atomic_block:
            with connection.cursor() as cur:
                cur.execute(f"SET LOCAL statement_timeout = {limit * 1000}")  # an int, not input
        yield
