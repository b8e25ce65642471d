"""A sick database fails fast: a client-side deadline on every PostgreSQL statement.

PostgreSQL's own ``statement_timeout`` (set on every connection, ``DATABASE_STATEMENT_TIMEOUT``) ends a slow
query, and TCP keepalives end a connection whose peer vanished. Neither helps when the server is *paused* (a stuck
disk, a frozen VM, SIGSTOP): the server cannot enforce its timeout, and the peer's kernel still acknowledges every
packet and keepalive probe, so a query on a kept-alive connection would wait as long as the pause lasts — and every
worker thread with it. So each statement also carries a client-side deadline (``DATABASE_CLIENT_TIMEOUT``): one
watchdog thread per process shuts the connection's socket down when a statement outlives it; psycopg then raises
``OperationalError`` at once, the request answers 503 ``database_unavailable`` (core.middleware / config.api), and
Django replaces the broken connection at the end of the request. New connections are bounded by
``connect_timeout``.

Bulk jobs whose single statements legitimately run long (a million-row COPY) wrap them in ``long_statements()``.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper

log = logging.getLogger("bazaar.db")

#: Seconds a statement in this context may take before its connection is cut; None: no client deadline.
_deadline: ContextVar[float | None] = ContextVar("bazaar_db_deadline", default=None)


class _Watchdog:
    """One daemon thread per process: cuts the sockets of statements past their deadline."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int]] = []  # (deadline, token, fd)
        self._live: set[int] = set()
        self._cond = threading.Condition()
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.cut = 0  # statements cut so far (for tests and logs)

    def _ensure_thread(self) -> None:
        if self._thread is None or self._pid != os.getpid():  # a forked worker needs its own thread
            self._heap, self._live, self._pid = [], set(), os.getpid()
            self._thread = threading.Thread(target=self._run, name="bazaar-db-watchdog", daemon=True)
            self._thread.start()

    def watch(self, fd: int, seconds: float) -> int:
        with self._cond:
            self._ensure_thread()
            token = next(self._tokens)
            heapq.heappush(self._heap, (time.monotonic() + seconds, token, fd))
            self._live.add(token)
            self._cond.notify()
            return token

    def done(self, token: int) -> None:
        with self._cond:
            self._live.discard(token)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._cond.wait()
                    continue
                due, token, fd = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(token)
                self.cut += 1
            _shutdown(fd)


def _shutdown(fd: int) -> None:
    """Shut the socket down (both directions) without closing the descriptor psycopg still owns."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    log.error("database statement past its deadline: connection cut (fd %s)", fd)


WATCHDOG = _Watchdog()


def _client_timeout() -> float:
    override = _deadline.get()
    return float(settings.DATABASE_CLIENT_TIMEOUT) if override is None else override


def _guard(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    seconds = _client_timeout()
    pg = getattr(context["connection"], "connection", None)
    fd = getattr(getattr(pg, "pgconn", None), "socket", -1)
    if seconds <= 0 or fd < 0:
        return execute(sql, params, many, context)
    token = WATCHDOG.watch(fd, seconds)
    try:
        return execute(sql, params, many, context)
    finally:
        WATCHDOG.done(token)


def install(sender: Any = None, connection: BaseDatabaseWrapper | None = None, **kwargs: Any) -> None:
    """``connection_created`` receiver: put the deadline guard on every new PostgreSQL connection."""
    if (
        connection is not None
        and connection.vendor == "postgresql"
        and _guard not in connection.execute_wrappers
    ):
        connection.execute_wrappers.append(_guard)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Statements in this block get ``seconds`` (0: no client deadline) instead of DATABASE_CLIENT_TIMEOUT."""
    token = _deadline.set(seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


@contextlib.contextmanager
def long_statements(seconds: int | None = None) -> Iterator[None]:
    """For a bulk job's statements (COPY, set-based INSERT of a million rows): lift the client deadline and raise
    the server's ``statement_timeout`` to DATABASE_BULK_STATEMENT_TIMEOUT for the current transaction only."""
    limit = int(settings.DATABASE_BULK_STATEMENT_TIMEOUT if seconds is None else seconds)
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cur:
            cur.execute(f"SET LOCAL statement_timeout = {limit * 1000}")  # an int, not input
    with deadline(0):
        yield
