"""Keep the nginx edge cache fresh: purge a scope's public pages from it when the scope is invalidated.

nginx caches the anonymous cached pages (the fast-path routes: store pages, title and trainer lists, home) for a
long backstop time (deploy/nginx.conf.tmpl). Bazaar's promise is that nothing is stale after a write commits, so
every generation bump (core.cache ``_bump_many``, run after commit, after the ``INCR``) calls :func:`on_bump`, which for
each page of the scope, before the write's response goes out:

1. purges it (``PURGE <EDGE_PURGE_URL>/purge/<path>``);
2. *settles* it (``GET <EDGE_PURGE_URL>/settle/<path>``): a fill that nginx started before the commit may have read
   the old data and land after the purge. nginx runs one fill per page at a time (``proxy_cache_lock``); the settle
   request waits on that lock, so it returns only once such a fill has landed;
3. purges it again if something landed in between (the settle saw a HIT).

A read that starts after the write's response therefore never sees the old page. A last purge follows
``EDGE_PURGE_DELAY`` (1 s) later from a daemon timer thread, coalesced per path, for the cases the steps above
could not finish (nginx slow or unreachable at that moment). Apps say which pages a scope covers, next to their
fast-path routes in ``AppConfig.ready()``::

    edge.register("storefront", "store", lambda scope: [f"/s/{scope.id}/"])

Unset ``EDGE_PURGE_URL`` means no edge cache: nothing is sent. Purging never raises into the request: failures
(nginx down, timeout, an unexpected status) are logged and counted (``bazaar_cache_events_total{event=
"edge_purge_failed"}``); the edge entry then lives until the delayed purge or its backstop validity.
"""

from __future__ import annotations

import http.client
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from django.conf import settings

from bazaar.core import cache
from bazaar.core.cache import Scope

log = logging.getLogger("bazaar.edge")

UrlsFor = Callable[[Scope], Iterable[str]]
_mappers: dict[tuple[str, str], list[UrlsFor]] = {}

#: Statuses of the purge module that mean "done": 200 purged, 404 there was nothing cached under that key.
_OK = (200, 404)


def register(app: str, entity: str, urls: UrlsFor) -> None:
    """Scopes ``Scope(app, entity, id)`` cover the edge paths ``urls(scope)`` (absolute paths, no query)."""
    _mappers.setdefault((app, entity), []).append(urls)


def urls_for(scope: Scope) -> list[str]:
    paths: list[str] = []
    for urls in _mappers.get((scope.app, scope.entity), ()):
        paths.extend(urls(scope))
    return list(dict.fromkeys(paths))


def _send(method: str, step: str, paths: list[str], timeout: float) -> list[tuple[str, int, str]]:
    """``method <EDGE_PURGE_URL>/<step><path>`` for each path on one keep-alive connection.

    Returns ``(path, status, X-Cache-Status)`` per path; status 0 = no answer. After the first connection error or
    timeout the remaining paths are not tried (status 0) rather than waited for one by one.
    """
    parts = urlsplit(settings.EDGE_PURGE_URL)
    prefix = parts.path.rstrip("/") + "/" + step
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    out: list[tuple[str, int, str]] = []
    try:
        for i, path in enumerate(paths):
            try:
                conn.request(method, prefix + path)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                log.warning("edge %s of %d path(s) failed at %s: %s", step, len(paths) - i, path, exc)
                out.extend((p, 0, "") for p in paths[i:])
                break
            out.append((path, response.status, response.getheader("X-Cache-Status") or ""))
    finally:
        conn.close()
    return out


def purge(paths: Iterable[str], *, app: str = "edge") -> int:
    """Drop each path from the edge now. Returns how many failed (counted and logged); never raises."""
    todo = list(paths)
    if not settings.EDGE_PURGE_URL or not todo:
        return 0
    failed = 0
    for path, status, _ in _send("PURGE", "purge", todo, float(settings.EDGE_PURGE_TIMEOUT)):
        if status in _OK:
            cache.count("edge_purge", app)
        else:
            failed += 1
            cache.count("edge_purge_failed", app)
            if status:
                log.warning("edge purge of %s answered %s", path, status)
    return failed


def settle(paths: Iterable[str], *, app: str = "edge") -> list[str]:
    """Wait until no fill of these paths that may predate the purge is in flight; return the paths to purge again.

    nginx lets one fill per page run at a time (proxy_cache_lock). ``GET /settle/<path>`` shares that lock: it
    returns when a fill in flight has landed (HIT: that fill may have read the data before the commit, so the path
    is purged again) or takes the lock itself for an instant (MISS, 204: nothing was in flight, nothing can land
    later). A failed settle returns the path too (purging again is always safe).
    """
    todo = list(paths)
    if not settings.EDGE_PURGE_URL or not todo:
        return []
    # A wait on the cache lock lasts up to proxy_cache_lock_age (0.1 s): allow for it on top of the timeout.
    answers = _send("GET", "settle", todo, float(settings.EDGE_PURGE_TIMEOUT) + 0.5)
    again = [path for path, status, hit in answers if not (status == 204 and hit == "MISS")]
    for _ in again:
        cache.count("edge_settle_refill", app)
    return again


_start_lock = threading.Lock()


class _Later:
    """The second purge, ``EDGE_PURGE_DELAY`` after the latest first purge of each path, from one daemon thread.

    Coalesced: a path purged again before its timer fired keeps one pending entry, due ``delay`` after the newest
    purge (each newer bump purged at once anyway). The thread is started lazily and again after a fork (Celery's
    prefork children, server workers), because threads do not survive a fork.
    """

    def __init__(self) -> None:
        self._pid = 0
        self._cond = threading.Condition()
        self._due: dict[str, tuple[float, str]] = {}

    def add(self, paths: Iterable[str], app: str, delay: float) -> None:
        if os.getpid() != self._pid:
            with _start_lock:
                if os.getpid() != self._pid:
                    self._cond = threading.Condition()
                    self._due = {}
                    thread = threading.Thread(
                        target=self._run, args=(self._cond,), name="edge-purge", daemon=True
                    )
                    thread.start()
                    self._pid = os.getpid()
        due = time.monotonic() + delay
        with self._cond:
            for path in paths:
                self._due[path] = (due, app)
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._due)

    def _run(self, cond: threading.Condition) -> None:
        while True:
            with cond:
                while not self._due:
                    cond.wait()
                now = time.monotonic()
                soonest = min(d for d, _ in self._due.values())
                if soonest > now:
                    cond.wait(soonest - now)
                    continue
                ready = [(p, a) for p, (d, a) in self._due.items() if d <= now]
                for path, _app in ready:
                    del self._due[path]
            by_app: dict[str, list[str]] = {}
            for path, app in ready:
                by_app.setdefault(app, []).append(path)
            for app, paths in by_app.items():
                try:
                    purge(paths, app=app)
                except Exception:  # the timer thread must survive anything
                    log.exception("edge purge (second pass) failed")


_later = _Later()


def on_bump(scope: Scope) -> None:
    """core.cache hook, after a scope's generation moved (after commit): purge its pages now and once more later."""
    if not settings.EDGE_PURGE_URL:
        return
    try:
        paths = urls_for(scope)
        if not paths:
            return
        purge(paths, app=scope.app)
        again = settle(paths, app=scope.app)
        if again:
            purge(again, app=scope.app)
        _later.add(paths, scope.app, float(settings.EDGE_PURGE_DELAY))
    except Exception:  # never into the request that committed
        log.exception("edge purge for %s failed", scope)
        cache.count("edge_purge_failed", scope.app)


def pending() -> int:
    """How many second-pass purges are waiting (tests, diagnostics)."""
    return _later.pending()


if on_bump not in cache.bump_hooks:
    cache.bump_hooks.append(on_bump)
