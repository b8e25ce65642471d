"""Small raw values and fixed-window counters in the cache (bearer-token and API-key flags, rate limits), with
the same namespace, fail-open behaviour and outage bookkeeping as the rest of bazaar.core.cache (its state module; re-exported
there: callers use ``cache.get_raw`` etc.).

Raw values are tagged with the epoch they were stored under (``<epoch>|<value>``) and read only under that epoch:
a flag that should have been deleted while the cache was down (a revoked token or API key) is dropped by the same
epoch bump that settles lost invalidations, and a Redis restored from an old snapshot cannot bring it back.
Counters are not tagged: a rate-limit window restored from a snapshot only makes the limit stricter."""

from __future__ import annotations

from django.db import transaction

from bazaar.core.cache import state as _state
from bazaar.core.cache.backends import CacheUnavailable


def raw_key(*parts: str | int) -> str:
    """A namespaced key for small raw values (flags, counters) stored with :func:`set_raw`."""
    return ":".join([_state.prefix(), *(str(p) for p in parts)])


def untag(raw: bytes | None, epoch: bytes | None) -> bytes | None:
    """The value of a tagged raw entry if it was stored under ``epoch``, else None."""
    if raw is None or epoch is None:
        return None
    tag = epoch + b"|"
    return raw[len(tag) :] if raw.startswith(tag) else None


def get_raw(key: str) -> bytes | None:
    """Read a raw value stored with :func:`set_raw`; None when missing, stored under an older epoch, or the cache
    is down. One round trip (the epoch comes in the same ``MGET``)."""
    be = _state._usable("core")
    if be is None:
        return None
    try:
        epoch, raw = be.mget([f"{_state.prefix()}:epoch", key])
    except CacheUnavailable as exc:
        _state._fail(exc, "core")
        return None
    return untag(raw, epoch)


def set_raw(key: str, value: bytes, ttl: int) -> None:
    """Store a raw value under a :func:`raw_key` (TTL required), tagged with the current epoch. Fails open."""
    be = _state._usable("core")
    if be is None:
        return
    try:
        epoch_key = f"{_state.prefix()}:epoch"
        epoch = _state._ensure(
            be, epoch_key, be.mget([epoch_key])[0], _state._gen_ttl(_state.default_ttl()) * 24
        )
        be.set(key, epoch + b"|" + value, ttl)
    except CacheUnavailable as exc:
        _state._fail(exc, "core")


def delete_raw_on_commit(key: str) -> None:
    """Delete a raw key now and again once the current transaction commits (e.g. an API key was revoked).

    The early delete stops use at once in this process's view; the one after commit removes anything a
    concurrent reader re-cached from the not-yet-committed state in between.
    """

    def run() -> None:
        be = _state._usable("core")
        if be is None:
            _state._lose_invalidation()
            return
        try:
            be.delete(key)
        except CacheUnavailable as exc:
            _state._lose_invalidation()
            _state._fail(exc, "core")

    run()
    transaction.on_commit(run)


def hit_counter(key: str, window: int) -> int:
    """Increment a fixed-window counter (rate limits). Returns 0 when the cache is down (fail open, counted)."""
    be = _state._usable("core")
    if be is None:
        return 0
    try:
        return be.incr(f"{_state.prefix()}:rl:{key}", window)
    except CacheUnavailable as exc:
        _state._fail(exc, "core")
        return 0


def peek_counter(key: str) -> int:
    be = _state._usable("core")
    if be is None:
        return 0
    try:
        raw = be.mget([f"{_state.prefix()}:rl:{key}"])[0]
    except CacheUnavailable as exc:
        _state._fail(exc, "core")
        return 0
    return int(raw) if raw is not None else 0
