"""The one module that talks to the cache (Redis through django-redis' reused client, or Django's in-process
cache in the embedded default).

Model
-----
* A **scope** (``Scope("storefront", "shop", 42)``) is a unit of invalidation. It has a *generation* counter
  ``<prefix>:<app>:<entity>:<id>:gen``. Writers call :func:`invalidate` inside their transaction; the bump runs in
  ``transaction.on_commit``, so the generation moves only once the data it describes is committed.
* An **entry** is ``<prefix>:<app>:<entity>:<id>:<variant>`` and holds ready bytes behind a one-line header naming
  the epoch and generation it was built under, and its ETag. A hit is *one* round trip: ``MGET epoch gen entry``;
  the entry is served only when its header matches the current epoch and generation.
* The stale-set race is closed by ordering: a reader reads the generation *before* it reads the database and tags
  what it builds with that generation; if a write commits meanwhile, the bump makes the tag old, so the value it
  stores is never served (see ``tests/test_cache.py::test_stale_set_race``).
* Every key has a TTL, generation counters included. A missing counter is re-created with a random value, so an
  expired counter can never make an old entry valid again.
* Single flight: on a miss one process takes a short lock (``add``) and rebuilds; others poll briefly for the
  result, then build for themselves rather than wait forever.
* Fail open: any cache error is counted (``fail_open``), opens a short circuit breaker, and the value is built
  from the database. Invalidations that could not be delivered during an outage are settled by bumping the
  global *epoch*, which invalidates every entry (and every raw flag) at once, so nothing stale is served after
  the cache returns.
* Remember durably (``ledger``): an undelivered invalidation is also counted in the database before the write's
  answer goes out, and every new Redis connection checks that count and the server's run id before its first
  command. A process that never saw the outage, one started during it, the CLI, and a Redis restarted empty,
  restored from an old snapshot or failed over all meet the ledger before they meet the cache.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from bazaar.core.cache.backends import Backend, CacheUnavailable

# Small raw values and counters (tokens, flags, rate limits) live in .raw; re-exported here, where callers look.
from bazaar.core.cache.raw import (
    delete_raw_on_commit,
    get_raw,
    hit_counter,
    peek_counter,
    raw_key,
    set_raw,
    untag,
)
from bazaar.core.cache.state import (
    STATE,
    CacheState,
    _ensure,
    _fail,
    _fresh_counter,
    _gen_ttl,
    _lose_invalidation,
    _usable,
    backend,
    count,
    default_ttl,
    prefix,
    reset_backend,
    set_prefix,
)


@dataclass(frozen=True, slots=True)
class Scope:
    """A unit of invalidation: every entry under it is dropped by one :func:`invalidate`."""

    app: str
    entity: str
    id: str | int = "all"

    def base(self, prefix: str) -> str:
        return f"{prefix}:{self.app}:{self.entity}:{self.id}"


@dataclass(frozen=True, slots=True)
class Cached:
    """Ready bytes plus their ETag (quoted, as sent in the header)."""

    body: bytes
    etag: str
    hit: bool


# --- state: one object in bazaar.core.cache.state (this process's backend, namespace, breaker, lost invalidations)

LOCK_TTL = 10
WAIT_STEP = 0.005
WAIT_MAX = 2.0


def etag_for(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _pack(epoch: bytes, gen: bytes, etag: str, body: bytes) -> bytes:
    return b"%s:%s:%s\n%s" % (epoch, gen, etag.encode(), body)


def _unpack(raw: bytes, epoch: bytes, gen: bytes) -> tuple[str, bytes] | None:
    nl = raw.find(b"\n")
    if nl < 0:
        return None
    header = raw[:nl]
    tag = epoch + b":" + gen + b":"
    if not header.startswith(tag):
        return None
    return header[len(tag) :].decode(), raw[nl + 1 :]


def get_or_build(
    scope: Scope,
    variant: str,
    build: Callable[[], bytes],
    *,
    ttl: int | None = None,
) -> Cached:
    """Return the bytes cached for ``scope``/``variant``, building them with ``build()`` on a miss.

    One cache round trip on a hit. On a miss a single process rebuilds (others wait up to ``WAIT_MAX``); the
    result is tagged with the generation read *before* building, so a concurrent write makes it unservable.
    Never raises because of the cache: on any cache error the value is built from the database.
    """
    ttl = ttl or default_ttl()
    app = scope.app
    be = _usable(app)
    if be is None:
        body = build()
        return Cached(body, etag_for(body), hit=False)
    p = prefix()
    base = scope.base(p)
    epoch_key, gen_key, entry_key = f"{p}:epoch", f"{base}:gen", f"{base}:{variant}"
    try:
        epoch_raw, gen_raw, raw = be.mget([epoch_key, gen_key, entry_key])
        if raw is not None and epoch_raw is not None and gen_raw is not None:
            found = _unpack(raw, epoch_raw, gen_raw)
            if found is not None:
                count("hit", app)
                return Cached(found[1], found[0], hit=True)
        count("miss", app)
        epoch = _ensure(be, epoch_key, epoch_raw, _gen_ttl(ttl) * 24)
        gen = _ensure(be, gen_key, gen_raw, _gen_ttl(ttl))
        lock_key = f"{entry_key}:lock:{gen.decode()}"
        if be.add(lock_key, b"1", LOCK_TTL):
            try:
                body = build()
                etag = etag_for(body)
                be.set(entry_key, _pack(epoch, gen, etag, body), ttl)
                count("build", app)
            finally:
                be.delete(lock_key)
            return Cached(body, etag, hit=False)
        # Someone else is rebuilding this generation: wait briefly for their result.
        count("wait", app)
        deadline = time.monotonic() + WAIT_MAX
        while time.monotonic() < deadline:
            time.sleep(WAIT_STEP)
            epoch_raw, gen_raw, raw = be.mget([epoch_key, gen_key, entry_key])
            if raw is not None and epoch_raw is not None and gen_raw is not None:
                found = _unpack(raw, epoch_raw, gen_raw)
                if found is not None:
                    return Cached(found[1], found[0], hit=True)
            if gen_raw != gen or epoch_raw != epoch:
                break  # invalidated while waiting: build from the database ourselves
        body = build()
        return Cached(body, etag_for(body), hit=False)
    except CacheUnavailable as exc:
        _fail(exc, app)
        body = build()
        return Cached(body, etag_for(body), hit=False)


def peek(scope: Scope, variant: str) -> Cached | None:
    """The cached bytes if present and current, else None. One round trip; never builds, never raises."""
    return peek_with(scope, variant, ())[0]


def peek_with(scope: Scope, variant: str, extra: Sequence[str]) -> tuple[Cached | None, list[bytes | None]]:
    """Like :func:`peek`, and fetch the raw values ``extra`` (from :func:`raw_key`, stored with :func:`set_raw`;
    None unless stored under the current epoch) in the same round trip.

    For hot paths that must check something else per request (e.g. that an API key is still valid) without a
    second round trip. On an outage returns ``(None, [None, ...])``.
    """
    look = lookup(scope, variant, extra)
    if look is None:
        return None, [None] * len(extra)
    return look.found, look.extras


@dataclass(frozen=True, slots=True)
class Lookup:
    """One round trip's view of an entry (:func:`lookup`): the entry if current, the extra raw values, and the
    epoch and generation it read, under which a value built *after* it may be stored (:func:`fill`)."""

    scope: Scope
    variant: str
    found: Cached | None
    extras: list[bytes | None]
    epoch: bytes | None
    gen: bytes | None
    #: ``gen`` was chosen by :func:`ready_to_fill`, not read: :func:`fill` creates it only if still absent.
    gen_absent: bool = False


def lookup(scope: Scope, variant: str, extra: Sequence[str] = ()) -> Lookup | None:
    """:func:`peek_with` that also keeps the epoch and generation it read, for a fast path that builds a miss
    itself (:func:`fill`) instead of handing the request to Django. None on an outage (or an unsettled lost
    invalidation): the caller hands over. One round trip; never raises."""
    if STATE.breaker_open() or STATE.epoch_dirty:
        return None
    p = prefix()
    base = scope.base(p)
    try:
        got = backend().mget([f"{p}:epoch", f"{base}:gen", f"{base}:{variant}", *extra])
    except CacheUnavailable as exc:
        _fail(exc, scope.app)
        return None
    epoch_raw, gen_raw, raw = got[0], got[1], got[2]
    extras = [untag(x, epoch_raw) for x in got[3:]]
    found = None
    if raw is not None and epoch_raw is not None and gen_raw is not None:
        unpacked = _unpack(raw, epoch_raw, gen_raw)
        if unpacked is not None:
            count("hit", scope.app)
            found = Cached(unpacked[1], unpacked[0], hit=True)
    # The app's cold-miss rate (skip_lookup): a moving average over about the last 64 lookups. Updated without a
    # lock: a lost update between threads only delays the average by one lookup.
    rate = STATE.cold_rate.get(scope.app, 0.0)
    STATE.cold_rate[scope.app] = rate + (float(found is None and gen_raw is None) - rate) * _RATE_WEIGHT
    return Lookup(scope, variant, found, extras, epoch_raw, gen_raw)


#: skip_lookup: the cold-miss rate above which a first read skips the lookup, the weight of one lookup in the rate,
#: and how often a read that could skip is looked up anyway (so the rate keeps following the reads).
BYPASS_AT = 0.9
_RATE_WEIGHT = 1 / 64
BYPASS_SAMPLE = 16


def skip_lookup(scope: Scope, variant: str) -> bool:
    """Whether a fast path should read ``scope`` straight from the database, without looking it up first.

    When nearly every lookup of this app in this process lately was a cold miss (random reads over a keyspace far
    larger than the cache: :data:`BYPASS_AT`), the lookup of a scope the doorkeeper has not seen is a round trip
    that almost surely finds nothing, and whose miss :func:`admit` would not store anyway. Then the read goes to
    the database alone (one statement instead of a lookup and a statement) and counts as the doorkeeper's first
    cold miss: the scope's next read is looked up, and stored if it misses again, so a key read twice still gets
    cached; a scope this process stored lately is always looked up (likely a hit). Every :data:`BYPASS_SAMPLE`-th
    such read is looked up anyway, so the rate follows the traffic (a hot key read again is a hit, and a few hits
    end the skipping). The database is the truth: a skipped lookup can never
    serve anything stale. A fast path that skips must check everything else the lookup carried (an API key's
    validity flag) in its statement."""
    if STATE.cold_rate.get(scope.app, 0.0) < BYPASS_AT:
        return False
    STATE.bypasses += 1
    if STATE.bypasses % BYPASS_SAMPLE == 0:
        return False
    seen = STATE.cold_misses
    token = hash((scope, variant))
    if token in seen or token in STATE.stored_lately:
        return False  # its second cold read (looked up, and stored if it misses: admit), or one stored lately
    if len(seen) >= DOORKEEPER_SIZE:
        seen.clear()
    seen.add(token)
    count("miss", scope.app)
    return True


#: How many cold misses a process remembers for :func:`admit` (hashes, ~60 bytes each); the set is emptied when full.
DOORKEEPER_SIZE = 65_536


def admit(look: Lookup) -> bool:
    """Whether a miss should be stored (:func:`ready_to_fill`, then :func:`fill`): the doorkeeper of a keyspace too
    large to cache whole. A *warm* miss (the scope's generation counter exists: it was written or stored lately)
    always is. A *cold* one (no counter: nothing of the scope has been in the cache lately) is stored only on its
    second cold miss in this process lately, so a scan or random reads over a million keys cost one lookup and one
    statement each, not also a store of copies nobody reads again that would push out the ones read all the time
    (the rule of nginx's ``proxy_cache_min_uses 2`` and of TinyLFU's doorkeeper). A key read twice is stored on its
    second read; with several processes, by the time each has seen it twice at the most. A miss not stored is
    counted as a miss. Never stored is always fresh: nothing here can serve an old copy."""
    token = hash((look.scope, look.variant))
    if look.gen is not None:
        _stored_lately(token)
        return True
    seen = STATE.cold_misses
    if token in seen:
        seen.discard(token)
        _stored_lately(token)
        return True
    if len(seen) >= DOORKEEPER_SIZE:
        seen.clear()
    seen.add(token)
    count("miss", look.scope.app)
    return False


def _stored_lately(token: int) -> None:
    """Remember a scope this process stores (skip_lookup looks such a scope up: it is likely a hit)."""
    stored = STATE.stored_lately
    if len(stored) >= DOORKEEPER_SIZE:
        stored.clear()
    stored.add(token)


def ready_to_fill(look: Lookup) -> Lookup | None:
    """Call *before* reading the database for a miss. A value may only be tagged with counters read before its
    data was read — that ordering is what makes a concurrent write's bump win. A lookup that found no epoch gets
    it created now (rare: after a flush or a restart; one round trip more). One that found the epoch but no
    generation counter (a key never written since it left the cache: every cold miss) costs nothing here: the
    counter is chosen now (random, so never one an old copy carries) and created by :func:`fill` *only if still
    absent* (``SET NX``), in the same round trip as the store. A write that committed after the lookup has
    created the counter by its bump (``INCR``), so the ``NX`` fails and the copy, tagged with the chosen counter,
    is never served. None on an outage."""
    count("miss", look.scope.app)
    if look.epoch is not None and look.gen is not None:
        return look
    if look.epoch is not None:
        return Lookup(
            look.scope, look.variant, None, look.extras, look.epoch, _fresh_counter(), gen_absent=True
        )
    base = look.scope.base(prefix())
    try:
        be = backend()
        ttl = _gen_ttl(default_ttl())
        epoch = _ensure(be, f"{prefix()}:epoch", look.epoch, ttl * 24)
        gen = _ensure(be, f"{base}:gen", look.gen, ttl)
    except CacheUnavailable as exc:
        _fail(exc, look.scope.app)
        return None
    return Lookup(look.scope, look.variant, None, look.extras, epoch, gen)


def fill(look: Lookup, body: bytes, *, ttl: int | None = None) -> Cached:
    """Store ``body``, built from the database after ``look`` (passed through :func:`ready_to_fill`), tagged with
    the epoch and generation that lookup read: a write that committed meanwhile has moved the generation, so the
    stored value is never served. One round trip, also when the generation counter is created here. No
    single-flight lock: for a one-row read a lock costs more round trips than the duplicate builds it would save.
    Never raises (an outage only costs the store)."""
    etag = etag_for(body)
    if look.epoch is not None and look.gen is not None:
        base = look.scope.base(prefix())
        key = f"{base}:{look.variant}"
        packed = _pack(look.epoch, look.gen, etag, body)
        try:
            if look.gen_absent:
                be = backend()
                be.add_then_set(
                    f"{base}:gen", look.gen, _gen_ttl(default_ttl()), key, packed, ttl or default_ttl()
                )
            else:
                backend().set(key, packed, ttl or default_ttl())
            count("build", look.scope.app)
        except CacheUnavailable as exc:
            _fail(exc, look.scope.app)
    return Cached(body, etag, hit=False)


#: Called with each scope after its generation moved (after commit, also when the cache is down):
#: bazaar.core.edge purges the scope's pages from the nginx edge cache. Hooks must not raise.
bump_hooks: list[Callable[[Scope], None]] = []


def _bump_many(scopes: Sequence[Scope]) -> None:
    """INCR the generations of ``scopes`` in one round trip (one pipeline), then run the bump hooks."""
    apps = [s.app for s in scopes]
    if STATE.breaker_open():
        _lose_invalidation()
        for app in apps:
            count("fail_open", app)
    else:
        try:
            be = backend()
            be.incr_many([f"{s.base(prefix())}:gen" for s in scopes], _gen_ttl(default_ttl()))
            for app in apps:
                count("invalidation", app)
        except CacheUnavailable as exc:
            _lose_invalidation()
            _fail(exc, apps[0])
            for app in apps[1:]:
                count("fail_open", app)
    for scope in scopes:
        for hook in bump_hooks:
            hook(scope)


def invalidate(*scopes: Scope) -> None:
    """Drop every entry under ``scopes`` once the current transaction commits (at once outside one).

    The bump is an ``INCR`` of the generation: old entries stop matching and are never read again; no key scan.
    All scopes of one call are bumped in one round trip. If the cache is down the loss is remembered and settled
    by an epoch bump when it returns.
    """
    if scopes:
        transaction.on_commit(lambda: _bump_many(scopes))


def _bump_epoch() -> None:
    be = _usable("core")
    if be is None:
        _lose_invalidation()
        return
    try:
        be.set(f"{prefix()}:epoch", _fresh_counter(), _gen_ttl(default_ttl()) * 24)
        count("epoch_bump")
    except CacheUnavailable as exc:
        _lose_invalidation()
        _fail(exc, "core")


def invalidate_all() -> None:
    """Drop every entry and raw flag of this namespace once the current transaction commits (an epoch bump): for
    writes too large to name what they changed. The nginx edge is not purged by it (its entries have their own
    backstop validity); writes that feed edge-cached pages name their rows instead."""
    transaction.on_commit(_bump_epoch)


def check() -> str:
    """Readiness of the cache: 'ok', 'degraded' (unreachable: served from the database) or 'embedded'."""
    try:
        backend().ping()
    except CacheUnavailable:
        return "degraded"
    if not settings.REDIS_URL:
        return "embedded"
    return "ok"


def new_test_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


__all__ = [
    "STATE",
    "Backend",
    "CacheState",
    "CacheUnavailable",
    "Cached",
    "Scope",
    "backend",
    "check",
    "count",
    "default_ttl",
    "delete_raw_on_commit",
    "etag_for",
    "get_or_build",
    "get_raw",
    "hit_counter",
    "invalidate",
    "invalidate_all",
    "new_test_prefix",
    "peek",
    "peek_counter",
    "peek_with",
    "prefix",
    "raw_key",
    "reset_backend",
    "set_prefix",
    "set_raw",
    "skip_lookup",
]
