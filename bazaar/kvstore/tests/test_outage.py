"""With the cache unreachable, reads and writes keep working from the database, and nothing stale is served
once it is back."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from bazaar.core import cache
from bazaar.core.cache import CacheUnavailable
from bazaar.kvstore.tests.conftest import KV

CLOSED_PORT = {
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "CACHES": {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    },
}


@pytest.mark.django_db(transaction=True)
def test_reads_and_writes_work_with_the_cache_on_a_closed_port(kv: KV) -> None:
    kv.put("before", 1)
    try:
        with override_settings(**CLOSED_PORT):
            cache.reset_backend()
            assert kv.get("before").json()["value"] == 1
            assert kv.put("during", {"ok": True}).status_code == 200
            assert kv.put("during", {"ok": 2}, if_version=1).json()["version"] == 2
            got = kv.get("during")
            assert got.status_code == 200
            assert got.json()["value"] == {"ok": 2}
            assert got["X-Cache"] == "miss"
            assert kv.call("DELETE", "/keys/before").status_code == 204
            gone = kv.get("before")
            assert (gone.status_code, gone.json()["code"]) == (404, "key_not_found")
            assert [i["key"] for i in kv.call("GET", "/keys").json()["items"]] == ["during"]
            r = kv.call("POST", "/batch", {"ops": [{"op": "set", "key": "b", "value": 1}]})
            assert r.status_code == 200
    finally:
        cache.reset_backend()


class _Down:
    def __getattr__(self, name: str) -> Any:
        def fail(*a: Any, **k: Any) -> Any:
            raise CacheUnavailable("connection refused")

        return fail


@pytest.mark.django_db(transaction=True)
def test_writes_during_an_outage_are_not_hidden_by_old_cached_entries(kv: KV, monkeypatch: Any) -> None:
    kv.put("k", "old")
    assert kv.get("k").json()["value"] == "old"
    assert kv.get("k")["X-Cache"] == "hit"
    real = cache.backend()
    monkeypatch.setattr(cache.STATE, "backend", _Down())
    assert kv.put("k", "new").status_code == 200  # its invalidation is lost
    assert kv.get("k").json()["value"] == "new"
    monkeypatch.setattr(cache.STATE, "backend", real)
    monkeypatch.setattr(cache.STATE, "breaker_until", 0.0)
    assert kv.get("k").json()["value"] == "new"  # the epoch bump dropped the old entry
