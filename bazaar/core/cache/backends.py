"""The two cache backends behind bazaar.core.cache: Redis (a raw redis-py client on django-redis' pool, bytes in
and out) and Django's configured cache (the in-process LocMemCache of the embedded default). Only
bazaar.core.cache uses them; every other module goes through its functions."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from django.core.cache import caches


class CacheUnavailable(Exception):
    """Raised by a backend when the cache cannot be reached; never escapes this module."""


class Backend(Protocol):
    def mget(self, keys: Sequence[str]) -> list[bytes | None]: ...
    def set(self, key: str, value: bytes, ttl: int) -> None: ...
    def add(self, key: str, value: bytes, ttl: int) -> bool: ...
    def delete(self, key: str) -> None: ...
    def incr(self, key: str, ttl: int) -> int: ...
    def incr_many(self, keys: Sequence[str], ttl: int) -> None: ...
    def ping(self) -> None: ...


class RedisBackend:
    """Raw redis-py client from django-redis' pool: one reused connection pool per process, bytes in and out."""

    def __init__(self) -> None:
        from django_redis import get_redis_connection

        self.client = get_redis_connection("default")
        import redis

        self._redis = redis
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        # Reads go through one connection held per thread: checking a connection out of the pool costs a
        # non-blocking recv() per command (redis-py's "connection has data" check), and a syscall is dear on
        # this VM — on a cache hit it was as much CPU as the MGET's own round trip.
        self._local = threading.local()

    def _reader(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._redis.Redis(
                connection_pool=self.client.connection_pool, single_connection_client=True
            )
            self._local.client = client
        return client

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except self._errors as exc:
            raise CacheUnavailable(str(exc)) from exc

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        return self._call(lambda: self._reader().mget(keys))

    def set(self, key: str, value: bytes, ttl: int) -> None:
        self._call(lambda: self.client.set(key, value, ex=ttl))

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        return bool(self._call(lambda: self.client.set(key, value, ex=ttl, nx=True)))

    def delete(self, key: str) -> None:
        self._call(lambda: self.client.delete(key))

    def incr(self, key: str, ttl: int) -> int:
        def run() -> int:
            pipe = self.client.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, ttl)
            return int(pipe.execute()[0])

        return self._call(run)

    def incr_many(self, keys: Sequence[str], ttl: int) -> None:
        def run() -> None:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.incr(key)
                pipe.expire(key, ttl)
            pipe.execute()

        self._call(run)

    def ping(self) -> None:
        self._call(self.client.ping)


class DjangoBackend:
    """Django's configured cache (in-process LocMemCache by default). Values are stored as bytes."""

    def __init__(self) -> None:
        self.cache = caches["default"]
        self._lock = threading.Lock()

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        found = self.cache.get_many(list(keys))
        out: list[bytes | None] = []
        for k in keys:
            v = found.get(k)
            out.append(v)
        return out

    def set(self, key: str, value: bytes, ttl: int) -> None:
        self.cache.set(key, value, ttl)

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        return bool(self.cache.add(key, value, ttl))

    def delete(self, key: str) -> None:
        self.cache.delete(key)

    def incr(self, key: str, ttl: int) -> int:
        # LocMemCache is per process; the lock makes read-modify-write atomic within it.
        with self._lock:
            current = self.cache.get(key)
            value = int(current) + 1 if current is not None else 1
            self.cache.set(key, str(value).encode(), ttl)
            return value

    def incr_many(self, keys: Sequence[str], ttl: int) -> None:
        for key in keys:
            self.incr(key, ttl)

    def ping(self) -> None:
        return None
