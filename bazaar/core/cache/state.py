"""What bazaar.core.cache remembers in a process, in one object (:data:`STATE`), and the primitives every part of
the package uses on it: the backend, the key namespace, the circuit breaker, the lost-invalidation flag and its
settlement (epoch bump, ledger, outage watcher).

``bazaar.core.cache`` (entries, generations, invalidation) and ``bazaar.core.cache.raw`` (flags, counters) both
build on this module and not on each other. Tests change the state through the public calls
(:func:`set_prefix`, :func:`reset_backend`) or swap one of its fields (``monkeypatch.setattr(cache.STATE,
"backend", Down())``); nothing else holds a copy of it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

from django.conf import settings

from bazaar.core import metrics
from bazaar.core.cache import backends as _backends
from bazaar.core.cache.backends import Backend, CacheUnavailable, RedisBackend, SqliteBackend

log = logging.getLogger("bazaar.cache")


class CacheState:
    """This process's view of the cache."""

    __slots__ = (
        "backend",
        "breaker_until",
        "bypasses",
        "cold_misses",
        "cold_rate",
        "epoch_dirty",
        "lock",
        "prefix",
        "stored_lately",
        "validated_runs",
        "watcher",
    )

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: built on first use from the settings (:func:`backend`), forgotten by :func:`reset_backend`
        self.backend: Backend | None = None
        #: the key namespace when not the configured one (tests: one per test)
        self.prefix: str | None = None
        #: the circuit breaker is open (serve from the database) until this ``time.monotonic()``
        self.breaker_until = 0.0
        #: an invalidation was lost during an outage: bump the epoch when the cache returns
        self.epoch_dirty = False
        #: (namespace, Redis run id) checked against the ledger since this process last lost an invalidation
        self.validated_runs: set[tuple[str, str]] = set()
        #: the thread that watches an outage end (:func:`_watch_outage`)
        self.watcher: threading.Thread | None = None
        #: hashes of the scopes that missed cold once lately (core.cache.admit's doorkeeper), emptied when full
        self.cold_misses: set[int] = set()
        #: per app, the share of this process's recent lookups that were cold misses (a moving average,
        #: core.cache.lookup); above core.cache.BYPASS_AT a first read skips the lookup (core.cache.skip_lookup)
        self.cold_rate: dict[str, float] = {}
        #: hashes of the scopes this process stored lately (admit), looked up even when skipping; emptied when full
        self.stored_lately: set[int] = set()
        #: lookups skipped so far (every BYPASS_SAMPLE-th is made anyway, to keep measuring)
        self.bypasses = 0

    def breaker_open(self) -> bool:
        return bool(self.breaker_until) and time.monotonic() < self.breaker_until


STATE = CacheState()

_counters: dict[tuple[str, str], Any] = {}


def _make_backend() -> Backend:
    if settings.REDIS_URL:
        conf = settings.CACHES["default"]
        options = conf.get("OPTIONS", {})
        timeout = float(options.get("SOCKET_TIMEOUT", settings.CACHE_SOCKET_TIMEOUT))
        # Django's own CACHES spells a sentinel address its own way; core.cache reads the sentinel:// form.
        sentinel = settings.REDIS_URL.startswith("sentinel://")
        return RedisBackend(
            settings.REDIS_URL if sentinel else str(conf.get("LOCATION") or settings.REDIS_URL),
            socket_timeout=timeout,
            connect_timeout=float(options.get("SOCKET_CONNECT_TIMEOUT", timeout)),
        )
    return SqliteBackend(settings.CACHE_SQLITE_PATH)


def backend() -> Backend:
    be = STATE.backend
    if be is None:
        with STATE.lock:
            be = STATE.backend
            if be is None:
                be = STATE.backend = _make_backend()
    return be


def prefix() -> str:
    return STATE.prefix or settings.BAZAAR_CACHE_PREFIX


def set_prefix(value: str | None) -> None:
    """Change the key namespace (tests give every test its own, so no test sees another's entries)."""
    STATE.prefix = value
    STATE.breaker_until = 0.0
    STATE.epoch_dirty = False
    STATE.validated_runs.clear()
    STATE.cold_misses.clear()
    STATE.cold_rate.clear()
    STATE.stored_lately.clear()


def reset_backend() -> None:
    """Forget the backend so the next call builds it from current settings (tests that move REDIS_URL)."""
    with STATE.lock:
        STATE.backend = None
        STATE.breaker_until = 0.0
        STATE.epoch_dirty = False


def count(event: str, app: str = "core") -> None:
    child = _counters.get((event, app))
    if child is None:
        child = _counters[(event, app)] = metrics.CACHE_EVENTS.labels(event=event, app=app)
    child.inc()


def default_ttl() -> int:
    return int(settings.CACHE_DEFAULT_TTL)


def _gen_ttl(ttl: int) -> int:
    return ttl + 3600


def _fresh_counter() -> bytes:
    # Random start: an expired or lost counter can never line up with an old entry's tag again.
    return str(secrets.randbits(62)).encode()


def _ensure(be: Backend, key: str, current: bytes | None, ttl: int) -> bytes:
    if current is not None:
        return current
    fresh = _fresh_counter()
    if be.add(key, fresh, ttl):
        return fresh
    got = be.mget([key])[0]
    return got if got is not None else fresh


def _settle_new_connection(conn: Any) -> None:
    """A new Redis connection, before its first command: settle what the ledger says before anyone serves.

    Runs for every connection a process opens (after a Redis restart all of them are new). If the server's run id
    is not the one last settled, or invalidations were lost, the epoch is bumped on this connection first and the
    settlement recorded after: a process that reads the ledger settled has a bumped epoch to read.
    """
    from bazaar.core.cache import ledger

    conn.send_command("INFO", "server")
    info = conn.read_response()
    text = info.decode() if isinstance(info, bytes) else str(info)
    run = next(
        (line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("run_id:")), ""
    )
    namespace = prefix()
    if (namespace, run) in STATE.validated_runs:
        # This process already settled with this very server run and lost nothing since: a new connection (a
        # thread's first read) needs no database, so cached pages are still served while the database hangs.
        return
    found = ledger.state(namespace)
    if not ledger.needs_settling(found, run):
        STATE.validated_runs.add((namespace, run))
        return
    lost = found[1] if found else 0
    # One bump per (server run, lost count), whichever connection of whichever process comes first: the marker
    # and the bump are one atomic script, so a connection that finds the marker already set also finds the
    # epoch already bumped. A restored snapshot cannot hold the marker: it names the new server's run id.
    ttl = _gen_ttl(default_ttl()) * 24
    conn.send_command(
        "EVAL",
        _SETTLE_SCRIPT,
        2,
        f"{namespace}:settled:{run}:{lost}",
        f"{namespace}:epoch",
        _fresh_counter(),
        ttl,
    )
    if conn.read_response():
        count("epoch_bump")
    ledger.mark_settled(namespace, run, lost)
    STATE.validated_runs.add((namespace, run))


_SETTLE_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""


if _settle_new_connection not in _backends.connect_hooks:
    _backends.connect_hooks.append(_settle_new_connection)


def _fail(exc: BaseException, app: str) -> None:
    count("fail_open", app)
    STATE.breaker_until = time.monotonic() + float(settings.CACHE_BREAKER_SECONDS)
    log.warning("cache unavailable, serving from the database: %s", exc)
    _watch_outage()


WATCH_STEP = 0.1


def _watch_outage() -> None:
    """Watch an outage from a background thread and settle a lost invalidation (epoch bump) the moment the cache
    answers again, not at this process's next request: until then every *other* process, which never saw the
    outage, would keep serving the entries the lost invalidation should have dropped (measured: indefinitely on an
    idle app server, tests/test_faults.py). The thread ends once the cache answers and the breaker has closed."""
    with STATE.lock:
        if STATE.watcher is None or not STATE.watcher.is_alive():
            STATE.watcher = threading.Thread(target=_watch, name="bazaar-cache-watch", daemon=True)
            STATE.watcher.start()


def _watch() -> None:
    while True:
        time.sleep(WATCH_STEP)
        try:
            if STATE.epoch_dirty:
                backend().set(f"{prefix()}:epoch", _fresh_counter(), _gen_ttl(default_ttl()) * 24)
                STATE.epoch_dirty = False
                count("epoch_bump")
            else:
                backend().ping()
        except CacheUnavailable:
            continue
        if not STATE.epoch_dirty and time.monotonic() >= STATE.breaker_until:
            return


def _usable(app: str) -> Backend | None:
    """The backend if the breaker is closed and any lost invalidation has been settled, else None."""
    if STATE.breaker_open():
        count("fail_open", app)
        return None
    be = backend()
    if STATE.epoch_dirty:
        try:
            be.set(f"{prefix()}:epoch", _fresh_counter(), _gen_ttl(default_ttl()) * 24)
            STATE.epoch_dirty = False
            count("epoch_bump", app)
        except CacheUnavailable as exc:
            _fail(exc, app)
            return None
    return be


def _lose_invalidation() -> None:
    """An invalidation could not be delivered: settle it with an epoch bump as soon as the cache answers, and
    record it in the database first, so that every other process (and any cache server state restored later)
    is settled too before it is served from (``ledger``; checked on every new cache connection)."""
    STATE.epoch_dirty = True
    STATE.validated_runs.clear()  # this process's next connections check the ledger again
    if settings.REDIS_URL:
        from bazaar.core.cache import ledger

        if ledger.record_lost(prefix()):
            count("lost_recorded")
