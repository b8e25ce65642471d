"""Kvstore settings: ``settings.KVSTORE_X`` if set, else the environment variable of the same name, else the default."""

from __future__ import annotations

import os

from django.conf import settings


def _int(name: str, default: int) -> int:
    value = getattr(settings, name, None)
    if value is not None:
        return int(value)
    return int(os.environ.get(name, default))


def max_key_length() -> int:
    """KVSTORE_MAX_KEY_LENGTH (default 256): the longest key, in characters."""
    return _int("KVSTORE_MAX_KEY_LENGTH", 256)


def max_value_bytes() -> int:
    """KVSTORE_MAX_VALUE_BYTES (default 65536): the largest value, as compact UTF-8 JSON; beyond it 413."""
    return _int("KVSTORE_MAX_VALUE_BYTES", 64 * 1024)


def max_ttl() -> int:
    """KVSTORE_MAX_TTL (default 31536000 = one year): the longest TTL accepted, in seconds."""
    return _int("KVSTORE_MAX_TTL", 365 * 24 * 3600)


def max_batch_ops() -> int:
    """KVSTORE_MAX_BATCH_OPS (default 100): operations in one POST /batch."""
    return _int("KVSTORE_MAX_BATCH_OPS", 100)


def max_list_limit() -> int:
    """KVSTORE_MAX_LIST_LIMIT (default 1000): the largest page of GET /keys."""
    return _int("KVSTORE_MAX_LIST_LIMIT", 1000)


def apikey_flag_ttl() -> int:
    """KVSTORE_APIKEY_FLAG_TTL (default 300): seconds the fast path may trust a key's validity flag in Redis.

    Revoking deletes the flag after commit; the TTL only bounds how long a flag whose delete was lost in a cache
    outage can outlive the revocation.
    """
    return _int("KVSTORE_APIKEY_FLAG_TTL", 300)


def purge_interval() -> int:
    """KVSTORE_PURGE_INTERVAL (default 60): seconds between two runs of the periodic purge of expired entries."""
    return _int("KVSTORE_PURGE_INTERVAL", 60)


def purge_batch() -> int:
    """KVSTORE_PURGE_BATCH (default 1000): rows deleted per purge transaction (short locks)."""
    return _int("KVSTORE_PURGE_BATCH", 1000)


def cache_ttl() -> int:
    """KVSTORE_CACHE_TTL (default 900): backstop TTL of cached entries (invalidation is by event)."""
    return _int("KVSTORE_CACHE_TTL", 900)


def compact_interval() -> int:
    """KVSTORE_COMPACT_INTERVAL (default 300): seconds between two compactions of the change log."""
    return _int("KVSTORE_COMPACT_INTERVAL", 300)


def max_history_limit() -> int:
    """KVSTORE_MAX_HISTORY_LIMIT (default 1000): the largest page of a key's history or of a watch batch."""
    return _int("KVSTORE_MAX_HISTORY_LIMIT", 1000)


def watch_poll_ms() -> int:
    """KVSTORE_WATCH_POLL_MS (default 100): how often a process reads the revisions of tenants with waiters."""
    return _int("KVSTORE_WATCH_POLL_MS", 100)


def watch_max_waiting() -> int:
    """KVSTORE_WATCH_MAX_WAITING (default 2): watchers one process lets wait at once (each holds a WSGI thread)."""
    return _int("KVSTORE_WATCH_MAX_WAITING", 2)


def watch_server_threads() -> int:
    """KVSTORE_WATCH_SERVER_THREADS (default 4): the watch server's pool for the view and the reads after a wake
    (each thread holds at most one database connection; the watchers themselves hold none)."""
    return _int("KVSTORE_WATCH_SERVER_THREADS", 4)


def watch_server_max() -> int:
    """KVSTORE_WATCH_SERVER_MAX (default 10000): watchers one watch-server process lets wait at once."""
    return _int("KVSTORE_WATCH_SERVER_MAX", 10000)


def watch_stream_seconds() -> int:
    """KVSTORE_WATCH_STREAM_SECONDS (default 60): how long one event stream runs before the client reconnects."""
    return _int("KVSTORE_WATCH_STREAM_SECONDS", 60)
