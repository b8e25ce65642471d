"""core.cache: one-round-trip hits, invalidation after commit, the stale-set race, single flight, fail open."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections, transaction

from bazaar.core import cache
from bazaar.core.cache import CacheUnavailable, Scope

SCOPE = Scope("core", "test", 1)
User = get_user_model()  # the swappable user model: core's tests import no app (test_architecture.py)


def test_hit_serves_stored_bytes_without_building_again() -> None:
    builds: list[int] = []

    def build() -> bytes:
        builds.append(1)
        return b"hello"

    first = cache.get_or_build(SCOPE, "v", build)
    second = cache.get_or_build(SCOPE, "v", build)
    assert (first.body, first.hit) == (b"hello", False)
    assert (second.body, second.hit) == (b"hello", True)
    assert second.etag == first.etag == cache.etag_for(b"hello")
    assert len(builds) == 1


def test_hit_is_one_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    cache.get_or_build(SCOPE, "v", lambda: b"x")
    be = cache.backend()
    calls: list[str] = []
    for name in ("mget", "set", "add", "delete", "incr"):
        original = getattr(be, name)

        def wrapper(*a: Any, _n: str = name, _o: Any = original, **k: Any) -> Any:
            calls.append(_n)
            return _o(*a, **k)

        monkeypatch.setattr(be, name, wrapper)
    assert cache.get_or_build(SCOPE, "v", lambda: b"never").body == b"x"
    assert calls == ["mget"]


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    be = cache.backend()
    calls: list[str] = []
    for name in ("mget", "set", "add", "add_then_set", "delete", "incr", "incr_many"):
        original = getattr(be, name)

        def wrapper(*a: Any, _n: str = name, _o: Any = original, **k: Any) -> Any:
            calls.append(_n)
            return _o(*a, **k)

        monkeypatch.setattr(be, name, wrapper)
    return calls


def _cold_lookup() -> cache.Lookup:
    """A lookup of SCOPE whose generation counter does not exist (never written, or gone from the cache), with
    the epoch in place (it is, in a running system: every fill ensures it)."""
    cache.get_or_build(Scope("core", "test", "other"), "v", lambda: b"y")
    look = cache.lookup(SCOPE, "v")
    assert look is not None
    assert look.found is None
    assert look.gen is None
    assert look.epoch is not None
    return look


def _served() -> bytes | None:
    """What a reader of SCOPE would be served now (None: a miss)."""
    look = cache.lookup(SCOPE, "v")
    assert look is not None
    return None if look.found is None else look.found.body


def _refill(body: bytes) -> None:
    """A warm miss of SCOPE (its counter exists), filled with ``body``."""
    look = cache.lookup(SCOPE, "v")
    assert look is not None
    assert look.gen is not None
    ready = cache.ready_to_fill(look)
    assert ready is not None
    assert not ready.gen_absent
    cache.fill(ready, body)


@pytest.mark.django_db(transaction=True)
def test_cold_miss_fill_is_one_round_trip_and_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    look = _cold_lookup()
    calls = _count_calls(monkeypatch)
    ready = cache.ready_to_fill(look)
    assert ready is not None
    assert ready.gen_absent
    assert calls == []  # nothing before the database read
    cache.fill(ready, b"built")
    assert calls == ["add_then_set"]  # the counter (if still absent) and the copy, together
    assert _served() == b"built"


def _miss_count() -> float:
    from bazaar.core import metrics

    return float(metrics.CACHE_EVENTS.labels(event="miss", app="core")._value.get())


@pytest.mark.django_db(transaction=True)
def test_a_cold_miss_is_admitted_on_its_second_time_a_warm_one_at_once() -> None:
    """The doorkeeper (cache.admit): a scope with no counter is stored only when it missed cold before in this
    process; one with a counter (written or stored lately) always. Each refusal counts as a miss."""
    look = _cold_lookup()
    misses = _miss_count()
    assert cache.admit(look) is False
    assert _miss_count() == misses + 1
    assert cache.admit(look) is True  # the second cold miss
    assert cache.admit(look) is False  # remembered once: the next stranger's first time again
    assert cache.admit(cache.Lookup(SCOPE, "other-variant", None, [], look.epoch, None)) is False
    cache.invalidate(SCOPE)  # a write: the counter exists now
    warm = cache.lookup(SCOPE, "v")
    assert warm is not None
    assert warm.gen is not None
    assert cache.admit(warm) is True


@pytest.mark.django_db(transaction=True)
def test_first_reads_skip_the_lookup_only_while_nearly_every_lookup_missed_cold() -> None:
    """core.cache.skip_lookup: random reads over far more scopes than are cached go to the database without a
    lookup that would find nothing; a scope's second read is looked up (and stored, as admit decides); every
    BYPASS_SAMPLE-th read is looked up anyway; a few hits end the skipping."""
    from bazaar.core.cache.state import STATE

    assert not cache.skip_lookup(Scope("core", "skip", "first"), "v")  # no lookups yet
    for i in range(150):
        look = cache.lookup(Scope("core", "skip", i), "v")
        assert look is not None
        assert (look.found, look.gen) == (None, None)  # cold misses
    assert STATE.cold_rate["core"] > cache.BYPASS_AT
    assert "kvstore" not in STATE.cold_rate  # per app
    fresh = Scope("core", "skip", "fresh")
    STATE.bypasses = 0
    assert cache.skip_lookup(fresh, "v")
    assert not cache.skip_lookup(fresh, "v")  # its second read: looked up ...
    second = cache.lookup(fresh, "v")
    assert second is not None
    assert cache.admit(second)  # ... and stored if it misses (the skipped read was its first cold miss)
    STATE.bypasses = 0
    skipped = [cache.skip_lookup(Scope("core", "skip", f"s{i}"), "v") for i in range(2 * cache.BYPASS_SAMPLE)]
    assert skipped.count(False) == 2  # sampled: looked up, so the rate follows the traffic
    cache.get_or_build(SCOPE, "v", lambda: b"hot")
    for _ in range(8):  # a hot scope read again
        look = cache.lookup(SCOPE, "v")
        assert look is not None
        assert look.found is not None
    assert STATE.cold_rate["core"] < cache.BYPASS_AT
    assert not cache.skip_lookup(Scope("core", "skip", "after"), "v")
    cache.set_prefix(cache.new_test_prefix())  # a new namespace starts measuring again
    assert "core" not in STATE.cold_rate


@pytest.mark.django_db(transaction=True)
def test_the_doorkeeper_forgets_everything_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "DOORKEEPER_SIZE", 2)
    look = _cold_lookup()
    assert cache.admit(look) is False
    for n in (1, 2):
        assert (
            cache.admit(cache.Lookup(Scope("core", "test", f"o{n}"), "v", None, [], look.epoch, None))
            is False
        )
    assert cache.admit(look) is False  # emptied at the third: SCOPE's first miss was forgotten
    assert cache.admit(look) is True
    cache.set_prefix(cache.new_test_prefix())  # a new namespace starts with an empty doorkeeper
    assert cache.admit(look) is False


@pytest.mark.django_db(transaction=True)
def test_cold_miss_fill_loses_to_a_write_that_committed_after_its_lookup() -> None:
    ready = cache.ready_to_fill(_cold_lookup())
    assert ready is not None
    cache.invalidate(SCOPE)  # a write commits (autocommit: its bump runs now) and creates the counter
    cache.fill(ready, b"read before the write")
    assert _served() is None  # never served: the next reader reads the database
    _refill(b"after the write")
    assert _served() == b"after the write"


@pytest.mark.django_db(transaction=True)
def test_two_cold_fills_of_one_key_serve_only_the_one_whose_counter_won() -> None:
    first = cache.ready_to_fill(_cold_lookup())
    second = cache.ready_to_fill(_cold_lookup())
    assert first is not None
    assert second is not None
    assert first.gen != second.gen
    cache.fill(first, b"first")
    cache.fill(second, b"second")  # its counter lost (NX): its copy replaced the first but is not servable
    look = cache.lookup(SCOPE, "v")
    assert look is not None
    assert look.gen == first.gen
    assert _served() is None
    _refill(b"third")
    assert _served() == b"third"


@pytest.mark.django_db(transaction=True)
def test_invalidation_waits_for_commit() -> None:
    value = {"v": b"old"}
    cache.get_or_build(SCOPE, "v", lambda: value["v"])
    with transaction.atomic():
        value["v"] = b"new"
        cache.invalidate(SCOPE)
        # Not committed yet: readers still get the committed (old) state.
        assert cache.get_or_build(SCOPE, "v", lambda: b"old").body == b"old"
    assert cache.get_or_build(SCOPE, "v", lambda: value["v"]).body == b"new"


@pytest.mark.django_db
def test_rolled_back_write_does_not_invalidate() -> None:
    builds: list[int] = []

    def build() -> bytes:
        builds.append(1)
        return b"kept"

    cache.get_or_build(SCOPE, "v", build)
    with pytest.raises(RuntimeError), transaction.atomic():
        cache.invalidate(SCOPE)
        raise RuntimeError("rollback")
    assert cache.get_or_build(SCOPE, "v", build).hit is True
    assert len(builds) == 1


@pytest.mark.django_db(transaction=True)
def test_scopes_of_one_invalidation_are_bumped_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    other = Scope("core", "test", 2)
    cache.get_or_build(SCOPE, "v", lambda: b"a1")
    cache.get_or_build(other, "v", lambda: b"b1")
    be = cache.backend()
    calls: list[list[str]] = []
    original = be.incr_many

    def counting(keys: Any, ttl: int) -> None:
        calls.append(list(keys))
        original(keys, ttl)

    monkeypatch.setattr(be, "incr_many", counting)
    with transaction.atomic():
        cache.invalidate(SCOPE, other)
        assert calls == []  # not before the commit
    assert len(calls) == 1  # one round trip for both generations
    assert len(calls[0]) == 2
    assert cache.get_or_build(SCOPE, "v", lambda: b"a2").body == b"a2"
    assert cache.get_or_build(other, "v", lambda: b"b2").body == b"b2"


@pytest.mark.django_db(transaction=True)
def test_invalidation_drops_every_variant() -> None:
    cache.get_or_build(SCOPE, "a", lambda: b"a1")
    cache.get_or_build(SCOPE, "b", lambda: b"b1")
    other = cache.get_or_build(Scope("core", "test", 2), "a", lambda: b"other")
    cache.invalidate(SCOPE)
    assert cache.get_or_build(SCOPE, "a", lambda: b"a2").body == b"a2"
    assert cache.get_or_build(SCOPE, "b", lambda: b"b2").body == b"b2"
    assert cache.get_or_build(Scope("core", "test", 2), "a", lambda: b"x").body == other.body


@pytest.mark.django_db(transaction=True)
def test_stale_set_race() -> None:
    """(a) A reader that read the database before a write committed must not get its value served afterwards."""
    user = User.objects.create(username="racer", email="old@example.com")
    scope = Scope("core", "user", user.pk)
    read_done = threading.Event()
    may_store = threading.Event()
    reader_result: dict[str, bytes] = {}

    def slow_build() -> bytes:
        email = User.objects.get(pk=user.pk).email.encode()  # reads the old, committed row
        read_done.set()
        assert may_store.wait(10)
        return email

    def reader() -> None:
        try:
            reader_result["body"] = cache.get_or_build(scope, "email", slow_build).body
        finally:
            from django.db import connection

            connection.close()

    t = threading.Thread(target=reader)
    t.start()
    assert read_done.wait(10)
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(email="new@example.com")
        cache.invalidate(scope)
    may_store.set()  # the reader now stores what it built before the commit
    t.join(10)
    assert reader_result["body"] == b"old@example.com"

    def fresh() -> bytes:
        return User.objects.get(pk=user.pk).email.encode()

    served = cache.get_or_build(scope, "email", fresh)
    assert served.body == b"new@example.com"
    assert served.hit is False
    assert cache.get_or_build(scope, "email", fresh).body == b"new@example.com"


@pytest.mark.django_db(transaction=True)  # a new Redis connection checks the cache ledger in the database
def test_concurrent_misses_rebuild_once(settings: Any) -> None:
    """(c) N concurrent misses on one key: one build, everyone gets its bytes.

    Single flight needs a cache that answers: with the production 0.25 s socket timeout, 16 threads opening their
    first connections at once on a loaded CI host could time out, fail open and (correctly) all build from the
    database. This test is about single flight, so it gets a cache with a patient timeout; failing open is
    covered by the outage tests below.
    """
    settings.CACHE_SOCKET_TIMEOUT = 5.0
    caches = copy.deepcopy(settings.CACHES)  # a new dict: the fixture restores the old one afterwards
    opts = caches["default"].setdefault("OPTIONS", {})
    opts["SOCKET_TIMEOUT"] = opts["SOCKET_CONNECT_TIMEOUT"] = 5.0
    settings.CACHES = caches
    cache.reset_backend()
    n = 16
    builds: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)
    results: list[bytes] = []

    def build() -> bytes:
        with lock:
            builds.append(1)
        time.sleep(0.3)
        return b"expensive"

    def worker() -> None:
        try:
            barrier.wait()
            body = cache.get_or_build(SCOPE, "stampede", build).body
            with lock:
                results.append(body)
        finally:
            connections.close_all()  # the ledger check opened this thread's own database connection

    threads = [threading.Thread(target=worker) for _ in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    finally:
        cache.reset_backend()  # the next test gets the production timeouts back
    assert results == [b"expensive"] * n
    assert len(builds) == 1


class _DownBackend:
    def __getattr__(self, name: str) -> Any:
        def fail(*a: Any, **k: Any) -> Any:
            raise CacheUnavailable("connection refused")

        return fail


@pytest.mark.django_db(transaction=True)
def test_outage_then_recovery_serves_nothing_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    """An invalidation lost while the cache is down is settled (epoch bump) when it comes back."""
    cache.get_or_build(SCOPE, "v", lambda: b"before")
    real = cache.backend()
    monkeypatch.setattr(cache.STATE, "backend", _DownBackend())
    # Down: served from the "database", the write's invalidation is lost.
    assert cache.get_or_build(SCOPE, "v", lambda: b"during").body == b"during"
    cache.invalidate(SCOPE)
    monkeypatch.setattr(cache.STATE, "backend", real)
    monkeypatch.setattr(cache.STATE, "breaker_until", 0.0)
    assert cache.get_or_build(SCOPE, "v", lambda: b"after").body == b"after"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_every_key_has_a_ttl(cache_namespace: str) -> None:
    from django_redis import get_redis_connection

    cache.get_or_build(SCOPE, "v", lambda: b"x")
    cache.invalidate(SCOPE)
    cache.hit_counter("k", 60)
    r = get_redis_connection("default")
    keys = list(r.scan_iter(match=f"{cache_namespace}:*"))
    assert len(keys) >= 4
    for key in keys:
        assert r.ttl(key) > 0, key


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_redis_that_forgot_its_scripts_still_fills_and_invalidates(cache_namespace: str) -> None:
    """The cold fill and the invalidations are Lua scripts (EVALSHA); a restarted or newly promoted Redis has
    none loaded: the first call loads it again, and the entry is stored and then dropped as always."""
    from django_redis import get_redis_connection

    r = get_redis_connection("default")
    r.script_flush()
    look = _cold_lookup()
    ready = cache.ready_to_fill(look)
    assert ready is not None
    assert ready.gen_absent
    cache.fill(ready, b"stored")
    assert cache.get_or_build(SCOPE, "v", lambda: b"never").body == b"stored"
    r.script_flush()
    cache.invalidate(SCOPE)
    assert cache.get_or_build(SCOPE, "v", lambda: b"rebuilt").body == b"rebuilt"


@pytest.mark.django_db
def test_closed_port_still_answers_from_database(client: Any, settings: Any) -> None:
    """(b) Cache pointed at a closed port: every request still 200 from the database; counted; readyz degraded."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    cache.reset_backend()
    before = _fail_open_count()
    try:
        for path in ["/", "/", "/api/openapi.json", "/healthz"]:
            assert client.get(path).status_code == 200, path
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["cache"]["status"] == "degraded"
        assert _fail_open_count() > before
    finally:
        cache.reset_backend()


def _fail_open_count() -> float:
    from bazaar.core.metrics import CACHE_EVENTS

    total = 0.0
    for metric in CACHE_EVENTS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("event") == "fail_open":
                total += sample.value
    return total


def test_settings_prefix_is_per_test(cache_namespace: str) -> None:
    assert cache.prefix() == cache_namespace
    assert cache_namespace != settings.BAZAAR_CACHE_PREFIX


@pytest.mark.django_db(transaction=True)  # a new Redis connection checks the cache ledger in the database
def test_a_unix_socket_redis_url_reaches_that_server_through_validated_connections(tmp_path: Any) -> None:
    """``REDIS_URL=unix:///run/redis/redis.sock?db=N`` (Redis on this host, no TCP) is served: before, the pool was
    handed the TCP connection class whatever the scheme, so every connection failed and the cache was silently
    out (every read went to the database). The connect hooks (the ledger's check) still run on such connections."""
    import shutil
    import subprocess

    import redis

    from bazaar.core.cache import backends

    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    sock = tmp_path / "r.sock"
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    seen: list[Any] = []
    backends.connect_hooks.append(seen.append)
    backend = None
    try:
        direct = redis.Redis(unix_socket_path=str(sock), db=3, socket_timeout=5)
        deadline = time.monotonic() + 20
        while True:
            try:
                direct.ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        backend = backends.RedisBackend(f"unix://{sock}?db=3", socket_timeout=5, connect_timeout=5)
        backend.set("k", b"v", 60)
        backend.incr_many(["n1", "n2"], 60)
        assert backend.mget(["k", "n1", "absent"]) == [b"v", b"1", None]
        assert direct.get("k") == b"v"  # that server, that database
        assert direct.get("n2") == b"1"
        assert redis.Redis(unix_socket_path=str(sock), db=0).dbsize() == 0
        assert seen
        assert all(isinstance(c, redis.UnixDomainSocketConnection) for c in seen)
    finally:
        backends.connect_hooks.remove(seen.append)
        if backend is not None:
            backend.close()
        server.kill()
        server.wait(10)
