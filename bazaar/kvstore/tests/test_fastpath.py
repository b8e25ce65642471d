"""The WSGI fast path for GET /api/kv/keys/<key>: the same bytes and headers as Django, one MGET, and
everything it cannot vouch for (unknown or revoked key, expiry, miss, odd request) goes to Django."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.wsgi import get_wsgi_application

from bazaar.core import cache
from bazaar.core.fastpath import FastPath
from bazaar.core.testing import wsgi_get
from bazaar.kvstore import services
from bazaar.kvstore.tests.conftest import KV

pytestmark = pytest.mark.django_db(transaction=True)


def _call(app: FastPath, path: str, secret: str | None, **extra: str) -> tuple[str, dict[str, str], bytes]:
    if secret:
        extra = {"HTTP_AUTHORIZATION": f"Bearer {secret}", **extra}
    return wsgi_get(app, path, **extra)


@pytest.fixture
def app() -> FastPath:
    return FastPath(get_wsgi_application())


def test_hit_is_served_before_django_with_the_same_bytes(app: FastPath, kv: KV, monkeypatch: Any) -> None:
    kv.put("cfg/a", {"n": 1})
    first = _call(app, "/api/kv/keys/cfg/a", kv.secret)
    assert first[1]["X-Cache"] == "miss"  # Django built it and recorded the key
    calls: list[int] = []
    be = cache.backend()
    real = be.mget

    def counting(keys: Any) -> Any:
        calls.append(len(keys))
        return real(keys)

    monkeypatch.setattr(be, "mget", counting)
    status, headers, body = _call(app, "/api/kv/keys/cfg/a", kv.secret)
    assert status == "200 OK"
    assert headers["X-Cache"] == "hit"
    assert calls == [4]  # one MGET: epoch, generation, entry and the key's validity flag
    assert body == first[2]
    for name in ("ETag", "Cache-Control", "Content-Type", "Content-Length", "X-Content-Type-Options"):
        assert headers[name] == first[1][name], name
    assert headers["ETag"] == '"1"'


def test_if_none_match_304_on_the_fast_path(app: FastPath, kv: KV) -> None:
    kv.put("k", 1)
    _call(app, "/api/kv/keys/k", kv.secret)
    status, headers, body = _call(app, "/api/kv/keys/k", kv.secret, HTTP_IF_NONE_MATCH='"1"')
    assert (status, headers["X-Cache"], body) == ("304 Not Modified", "hit", b"")


def test_write_is_seen_at_once(app: FastPath, kv: KV) -> None:
    kv.put("k", "old")
    _call(app, "/api/kv/keys/k", kv.secret)
    assert _call(app, "/api/kv/keys/k", kv.secret)[1]["X-Cache"] == "hit"
    kv.put("k", "new")
    _status, headers, body = _call(app, "/api/kv/keys/k", kv.secret)
    assert headers["X-Cache"] == "miss"
    assert b'"new"' in body


def test_revoked_key_is_refused_at_once(app: FastPath, kv: KV) -> None:
    kv.put("k", 1)
    _call(app, "/api/kv/keys/k", kv.secret)
    assert _call(app, "/api/kv/keys/k", kv.secret)[1]["X-Cache"] == "hit"
    from bazaar.kvstore.models import TenantApiKey

    services.apikey_revoke(key_id=TenantApiKey.objects.get(tenant=kv.tenant).pk)
    status, _headers, body = _call(app, "/api/kv/keys/k", kv.secret)
    assert status.startswith("401"), body


def test_other_tenants_key_never_gets_the_entry(app: FastPath, kv: KV, other: KV) -> None:
    kv.put("k", "acme")
    _call(app, "/api/kv/keys/k", kv.secret)
    status, _headers, _ = _call(app, "/api/kv/keys/k", other.secret)
    assert status.startswith("404")
    _call(app, "/api/kv/keys/k", other.secret)
    assert _call(app, "/api/kv/keys/k", other.secret)[0].startswith("404")


def test_expired_entry_is_not_served_from_the_cache(app: FastPath, kv: KV, monkeypatch: Any) -> None:
    kv.put("t", 1, ttl=5)
    _call(app, "/api/kv/keys/t", kv.secret)
    assert _call(app, "/api/kv/keys/t", kv.secret)[1]["X-Cache"] == "hit"
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 6)
    from django.utils import timezone

    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now + __import__("datetime").timedelta(seconds=6))
    assert _call(app, "/api/kv/keys/t", kv.secret)[0].startswith("404")


def test_unknown_keys_query_strings_and_odd_keys_go_to_django(
    app: FastPath, kv: KV, monkeypatch: Any
) -> None:
    kv.put("k", 1)
    _call(app, "/api/kv/keys/k", kv.secret)
    peeks: list[Any] = []
    real = cache.peek_with

    def spy(*a: Any) -> Any:
        peeks.append(a)
        return real(*a)

    monkeypatch.setattr(cache, "peek_with", spy)
    assert _call(app, "/api/kv/keys/k", "kv_never-seen-by-this-process-xx")[0].startswith("401")
    assert _call(app, "/api/kv/keys/k", kv.secret, QUERY_STRING="x=1")[1]["X-Cache"] == "hit"  # Django's hit
    assert _call(app, "/api/kv/keys/k", None)[0].startswith("401")
    assert [a for a in peeks if a[0].entity == "entry"] == []  # no entry was looked up for these
