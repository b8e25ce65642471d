"""Kvstore settings: typed accessors over ``django.conf.settings.KVSTORE_X`` (parsed from the environment variable of
the same name, with its default, in ``bazaar/config/settings/base.py``). Read at call time (``settings`` overrides)."""

from __future__ import annotations

from django.conf import settings


def max_key_length() -> int:
    """KVSTORE_MAX_KEY_LENGTH (default 256): the longest key, in characters."""
    return int(settings.KVSTORE_MAX_KEY_LENGTH)


def max_value_bytes() -> int:
    """KVSTORE_MAX_VALUE_BYTES (default 65536): the largest value, as compact UTF-8 JSON; beyond it 413."""
    return int(settings.KVSTORE_MAX_VALUE_BYTES)


def max_ttl() -> int:
    """KVSTORE_MAX_TTL (default 31536000 = one year): the longest TTL accepted, in seconds."""
    return int(settings.KVSTORE_MAX_TTL)


def max_batch_ops() -> int:
    """KVSTORE_MAX_BATCH_OPS (default 100): operations in one POST /batch."""
    return int(settings.KVSTORE_MAX_BATCH_OPS)


def max_list_limit() -> int:
    """KVSTORE_MAX_LIST_LIMIT (default 1000): the largest page of GET /keys."""
    return int(settings.KVSTORE_MAX_LIST_LIMIT)


def apikey_flag_ttl() -> int:
    """KVSTORE_APIKEY_FLAG_TTL (default 300): seconds the fast path may trust a key's validity flag in Redis.

    Revoking deletes the flag after commit; the TTL only bounds how long a flag whose delete was lost in a cache
    outage can outlive the revocation.
    """
    return int(settings.KVSTORE_APIKEY_FLAG_TTL)


def purge_interval() -> int:
    """KVSTORE_PURGE_INTERVAL (default 60): seconds between two runs of the periodic purge of expired entries."""
    return int(settings.KVSTORE_PURGE_INTERVAL)


def purge_batch() -> int:
    """KVSTORE_PURGE_BATCH (default 1000): rows deleted per purge transaction (short locks)."""
    return int(settings.KVSTORE_PURGE_BATCH)


def cache_ttl() -> int:
    """KVSTORE_CACHE_TTL (default 900): backstop TTL of cached entries (invalidation is by event)."""
    return int(settings.KVSTORE_CACHE_TTL)


def compact_interval() -> int:
    """KVSTORE_COMPACT_INTERVAL (default 300): seconds between two compactions of the change log."""
    return int(settings.KVSTORE_COMPACT_INTERVAL)


def max_history_limit() -> int:
    """KVSTORE_MAX_HISTORY_LIMIT (default 1000): the largest page of a key's history or of a watch batch."""
    return int(settings.KVSTORE_MAX_HISTORY_LIMIT)


def watch_poll_ms() -> int:
    """KVSTORE_WATCH_POLL_MS (default 100): how often a process reads the revisions of tenants with waiters."""
    return int(settings.KVSTORE_WATCH_POLL_MS)


def watch_max_waiting() -> int:
    """KVSTORE_WATCH_MAX_WAITING (default 2): watchers one process lets wait at once (each holds a WSGI thread)."""
    return int(settings.KVSTORE_WATCH_MAX_WAITING)


def watch_server_threads() -> int:
    """KVSTORE_WATCH_SERVER_THREADS (default 4): the watch server's pool for the view and the reads after a wake
    (each thread holds at most one database connection; the watchers themselves hold none)."""
    return int(settings.KVSTORE_WATCH_SERVER_THREADS)


def watch_server_max() -> int:
    """KVSTORE_WATCH_SERVER_MAX (default 10000): watchers one watch-server process lets wait at once."""
    return int(settings.KVSTORE_WATCH_SERVER_MAX)


def watch_stream_seconds() -> int:
    """KVSTORE_WATCH_STREAM_SECONDS (default 60): how long one event stream runs before the client reconnects."""
    return int(settings.KVSTORE_WATCH_STREAM_SECONDS)
