"""The cache backends behind bazaar.core.cache: Redis (a raw redis-py client on django-redis' pool, bytes in and
out) and, in the embedded default, a SQLite file shared by every process on the machine (the app server's
workers, Celery, the CLI). Only bazaar.core.cache uses them; every other module goes through its functions.

Why a shared file and not Django's in-process cache: a per-process cache cannot be invalidated by another
process, so a CLI write (``bazaar kv set``) or a second server worker would leave the running server serving old
bytes until the TTL. Measured and chosen in docs/design-notes.md ("An embedded cache every process shares")."""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

_T = TypeVar("_T")


class CacheUnavailable(Exception):
    """Raised by a backend when the cache cannot be reached; never escapes this module."""


class Backend(Protocol):
    def mget(self, keys: Sequence[str]) -> list[bytes | None]: ...
    def set(self, key: str, value: bytes, ttl: int) -> None: ...
    def add(self, key: str, value: bytes, ttl: int) -> bool: ...
    def add_then_set(
        self, first: str, first_value: bytes, first_ttl: int, key: str, value: bytes, ttl: int
    ) -> bool: ...
    def delete(self, key: str) -> None: ...
    def incr(self, key: str, ttl: int) -> int: ...
    def incr_many(self, keys: Sequence[str], ttl: int) -> None: ...
    def ping(self) -> None: ...


#: Called with each new Redis connection, after its handshake and before its first command (core.cache settles
#: lost invalidations and Redis restarts there: a restarted or restored Redis is only ever reached through a new
#: connection). A hook that raises makes the connection fail, so the caller fails open to the database.
connect_hooks: list[Callable[[Any], None]] = []


@functools.cache
def _connection_classes() -> tuple[type[Any], type[Any], type[Any], type[Any]]:
    import redis
    from redis.sentinel import SentinelManagedConnection

    class Checked:
        def on_connect_check_health(self, check_health: bool = True) -> None:
            super().on_connect_check_health(check_health)  # type: ignore[misc]
            for hook in connect_hooks:
                try:
                    hook(self)
                except redis.RedisError:
                    raise
                except (
                    Exception
                ) as exc:  # e.g. the database could not be asked: this connection is not usable
                    raise redis.ConnectionError(f"cache connection not validated: {exc}") from exc

    class CheckedConnection(Checked, redis.Connection):
        pass

    class CheckedSSLConnection(Checked, redis.SSLConnection):
        pass

    class CheckedUnixConnection(Checked, redis.UnixDomainSocketConnection):
        pass

    class CheckedSentinelConnection(Checked, SentinelManagedConnection):
        def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
            # redis-py re-opens a dropped connection through here, not through connect() (which asks the
            # sentinels): a thread's held reader would dial the dead primary forever (measured: 25 s, never
            # followed). Every (re)connect asks the sentinels where the primary is now.
            if not self._sock and self.connection_pool.is_master:  # type: ignore[attr-defined]
                self.host, self.port = self.connection_pool.get_master_address()
            super().connect_check_health(check_health, retry_socket_connect)  # type: ignore[misc]

    return CheckedConnection, CheckedSSLConnection, CheckedSentinelConnection, CheckedUnixConnection


def _scheme_class(url: str, *, plain: type[Any], ssl: type[Any], unix: type[Any]) -> type[Any]:
    """The validated connection class for a ``redis://``, ``rediss://`` or ``unix://`` URL (redis-py picks the
    class from the scheme only when none is given; a TCP class handed a socket path fails every connection)."""
    scheme = url.partition("://")[0].lower()
    return {"rediss": ssl, "unix": unix}.get(scheme, plain)


def _sentinel_pool(url: str, *, socket_timeout: float, connect_timeout: float, **kw: Any) -> Any:
    """A pool of connections to the primary a ``sentinel://`` URL names (core.redisurl). Each new connection asks
    the sentinels where the primary is now, so after a failover the next connection (the retry of a failed
    command, or a later request) reaches the promoted replica; a demoted primary's READONLY answer drops the
    connection the same way (redis-py's SentinelManagedConnection)."""
    from redis.sentinel import Sentinel, SentinelConnectionPool

    from bazaar.core.redisurl import parse_sentinel

    parsed = parse_sentinel(url)
    timeouts: dict[str, Any] = {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout}
    manager = Sentinel(list(parsed.sentinels), sentinel_kwargs=timeouts, **timeouts)
    return SentinelConnectionPool(
        parsed.service,
        manager,
        connection_class=_connection_classes()[2],
        db=parsed.db,
        password=parsed.password,
        **timeouts,
        **kw,
    )


#: ``add_then_set``: SET KEYS[1] NX with its TTL, then SET KEYS[2]; 1 if the first SET took.
_ADD_THEN_SET = """
local took = redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX')
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
if took then return 1 end
return 0
"""

#: ``incr_many``: INCR and EXPIRE every key of KEYS.
_INCR_MANY = """
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[1])
end
return 0
"""


class RedisBackend:
    """A raw redis-py client on a pool of its own: bytes in and out, connections validated when made.

    Commands are retried once on a connection error, on a new connection: after a Redis restart every pooled
    connection is dead, and without the retry each fails one command (measured: a generation bump lost per
    pooled connection, so a write answered while another process kept serving the old entry).
    """

    def __init__(self, url: str, *, socket_timeout: float, connect_timeout: float) -> None:
        import redis

        plain, ssl, _, unix = _connection_classes()
        self.url = url
        if url.startswith("sentinel://"):
            self.pool = _sentinel_pool(
                url,
                socket_timeout=socket_timeout,
                connect_timeout=connect_timeout,
                retry_on_error=[redis.ConnectionError],
                health_check_interval=0,
            )
        else:
            self.pool = redis.ConnectionPool.from_url(
                url,
                connection_class=_scheme_class(url, plain=plain, ssl=ssl, unix=unix),
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                retry_on_error=[redis.ConnectionError],
                health_check_interval=0,
            )
        self.client = redis.Redis(connection_pool=self.pool)
        self._redis = redis
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        # Reads go through one connection held per thread: checking a connection out of the pool costs a
        # non-blocking recv() per command (redis-py's "connection has data" check), and a syscall is dear on
        # this VM — on a cache hit it was as much CPU as the MGET's own round trip.
        self._local = threading.local()
        self._add_then_set_script = self.client.register_script(_ADD_THEN_SET)
        self._incr_many_script = self.client.register_script(_INCR_MANY)

    def _reader(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._redis.Redis(connection_pool=self.pool, single_connection_client=True)
            self._local.client = client
        return client

    def _call(self, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except self._errors as exc:
            raise CacheUnavailable(str(exc)) from exc

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        return cast("list[bytes | None]", self._call(lambda: self._reader().mget(keys)))

    def set(self, key: str, value: bytes, ttl: int) -> None:
        self._call(lambda: self._reader().set(key, value, ex=ttl))  # the thread's connection, as for reads

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        return bool(self._call(lambda: self.client.set(key, value, ex=ttl, nx=True)))

    def add_then_set(
        self, first: str, first_value: bytes, first_ttl: int, key: str, value: bytes, ttl: int
    ) -> bool:
        """``add(first, ...)`` then ``set(key, ...)`` in one round trip; whether the add took.

        One command (a Lua script, ``EVALSHA``) on the thread's own connection, as a read: every cold miss stores
        through here, and a redis-py pipeline checked out of the pool cost twice the client CPU of the MGET
        before it (profiled: a quarter of a cold miss). The script is two plain ``SET``s; redis-py loads it again
        on ``NOSCRIPT`` (a restarted or newly promoted Redis)."""
        return bool(
            self._call(
                lambda: self._add_then_set_script(
                    keys=[first, key], args=[first_value, first_ttl, value, ttl], client=self._reader()
                )
            )
        )

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
        """INCR + EXPIRE each key: one command (a script) on the thread's connection, like ``add_then_set``
        (every write's invalidation comes here; a pipeline from the pool was a fifth of a KV PUT's CPU)."""
        self._call(lambda: self._incr_many_script(keys=list(keys), args=[ttl], client=self._reader()))

    def ping(self) -> None:
        self._call(self.client.ping)

    def close(self) -> None:
        self.pool.disconnect()


class SqliteBackend:
    """A cache in one SQLite file (WAL) shared by every process on this machine: the embedded default.

    One connection per thread and process; ``synchronous=OFF`` (a cache may lose its last writes in an OS crash,
    never its consistency, and a lost entry only costs a rebuild). Generations and counters are incremented in one
    statement (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``), so they are atomic across processes. Expired rows
    are invisible at once and swept now and then.
    """

    SWEEP_EVERY = 1000

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._writes = 0
        self._conn()  # create the table now: a broken path fails at start, not on a request

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS entry (key TEXT PRIMARY KEY, value BLOB NOT NULL, "
                "expires REAL NOT NULL) WITHOUT ROWID"
            )
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def _call(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return fn(self._conn())
        except sqlite3.Error as exc:
            raise CacheUnavailable(str(exc)) from exc

    def _wrote(self, conn: sqlite3.Connection) -> None:
        self._writes += 1
        if self._writes % self.SWEEP_EVERY == 0:
            conn.execute("DELETE FROM entry WHERE expires <= ?", (time.time(),))

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        def run(conn: sqlite3.Connection) -> list[bytes | None]:
            marks = ",".join("?" * len(keys))
            rows = conn.execute(
                f"SELECT key, value FROM entry WHERE key IN ({marks}) AND expires > ?",  # noqa: S608 (placeholders only)
                [*keys, time.time()],
            ).fetchall()
            found = {k: (v if isinstance(v, bytes) else str(v).encode()) for k, v in rows}
            return [found.get(k) for k in keys]

        return self._call(run)

    def set(self, key: str, value: bytes, ttl: int) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO entry (key, value, expires) VALUES (?, ?, ?)",
                (key, value, time.time() + ttl),
            )
            self._wrote(conn)

        self._call(run)

    @staticmethod
    def _add(conn: sqlite3.Connection, key: str, value: bytes, ttl: int) -> bool:
        now = time.time()
        cur = conn.execute(
            "INSERT INTO entry (key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "value = excluded.value, expires = excluded.expires WHERE entry.expires <= ?",
            (key, value, now + ttl, now),
        )
        return cur.rowcount == 1

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        return self._call(lambda conn: self._add(conn, key, value, ttl))

    def add_then_set(
        self, first: str, first_value: bytes, first_ttl: int, key: str, value: bytes, ttl: int
    ) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            took = self._add(conn, first, first_value, first_ttl)
            conn.execute(
                "INSERT OR REPLACE INTO entry (key, value, expires) VALUES (?, ?, ?)",
                (key, value, time.time() + ttl),
            )
            self._wrote(conn)
            return took

        return self._call(run)

    def delete(self, key: str) -> None:
        self._call(lambda conn: conn.execute("DELETE FROM entry WHERE key = ?", (key,)))

    def _incr(self, conn: sqlite3.Connection, key: str, ttl: int) -> int:
        now = time.time()
        row = conn.execute(
            "INSERT INTO entry (key, value, expires) VALUES (?, 1, ?) ON CONFLICT(key) DO UPDATE SET "
            "value = CASE WHEN entry.expires <= ? THEN 1 ELSE CAST(entry.value AS INTEGER) + 1 END, "
            "expires = excluded.expires RETURNING value",
            (key, now + ttl, now),
        ).fetchone()
        return int(row[0])

    def incr(self, key: str, ttl: int) -> int:
        return self._call(lambda conn: self._incr(conn, key, ttl))

    def incr_many(self, keys: Sequence[str], ttl: int) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for key in keys:
                    self._incr(conn, key, ttl)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        self._call(run)

    def ping(self) -> None:
        self._call(lambda conn: conn.execute("SELECT 1").fetchone())

    def server_id(self) -> str:
        return "sqlite:" + self.path
