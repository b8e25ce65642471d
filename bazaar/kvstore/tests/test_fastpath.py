"""The WSGI fast path for GET /api/kv/keys/<key>: the same bytes and headers as Django, one MGET, and
everything it cannot vouch for (unknown or revoked key, expiry, miss, odd request) goes to Django."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.core.wsgi import get_wsgi_application

from bazaar.core import cache
from bazaar.core.errors import WWW_AUTHENTICATE
from bazaar.core.fastpath import FastPath
from bazaar.core.testing import fast_path_only, wsgi_call, wsgi_get
from bazaar.kvstore import services
from bazaar.kvstore.models import Entry
from bazaar.kvstore.tests.conftest import KV

pytestmark = pytest.mark.django_db(transaction=True)


def assert_refused(answer: tuple[str, dict[str, str], bytes], status: int, code: str) -> None:
    """A WSGI error answer (status line, headers, body): the status, the stable code in the JSON body, and
    WWW-Authenticate on a 401 - whichever of the fast path or Django answered."""
    line, headers, body = answer
    assert int(line[:3]) == status, body
    assert json.loads(body)["code"] == code, body
    if status == 401:
        assert headers["WWW-Authenticate"] == WWW_AUTHENTICATE


def _call(app: Any, path: str, secret: str | None, **extra: str) -> tuple[str, dict[str, str], bytes]:
    if secret:
        extra = {"HTTP_AUTHORIZATION": f"Bearer {secret}", **extra}
    return wsgi_get(app, path, **extra)


def _count_lookups(monkeypatch: Any) -> list[int]:
    """The cache backend's MGETs from now on (the size of each)."""
    calls: list[int] = []
    be = cache.backend()
    real = be.mget

    def counting(keys: Any) -> Any:
        calls.append(len(keys))
        return real(keys)

    monkeypatch.setattr(be, "mget", counting)
    return calls


@pytest.fixture
def app() -> FastPath:
    return FastPath(get_wsgi_application())


def test_hit_is_served_before_django_with_the_same_bytes(app: FastPath, kv: KV, monkeypatch: Any) -> None:
    kv.put("cfg/a", {"n": 1})
    first = _call(app, "/api/kv/keys/cfg/a", kv.secret)
    assert first[1]["X-Cache"] == "miss"  # Django built it and recorded the key
    calls = _count_lookups(monkeypatch)
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


def test_a_cold_key_is_stored_on_its_second_miss_and_a_written_one_on_its_first(
    app: FastPath, kv: KV
) -> None:
    """A key the cache knows nothing of (here: a new namespace) is answered from the database on its first miss
    without being stored (core.cache.admit): a scan of a million keys does not fill the cache with copies read
    once. Its second miss stores it. A key written since has its counter, so it is stored on its first miss."""
    kv.put("c", 1)
    cache.set_prefix(cache.new_test_prefix())
    assert services.apikey_authenticate(kv.secret) is not None  # the key's flag, in the new namespace
    answers = [fast_path_only("/api/kv/keys/c", HTTP_AUTHORIZATION=f"Bearer {kv.secret}") for _ in range(3)]
    assert [a[1]["X-Cache"] if a else None for a in answers] == ["miss", "miss", "hit"]
    assert len({a[2] for a in answers if a}) == 1  # the same bytes each time
    kv.put("c", 2)
    after = [fast_path_only("/api/kv/keys/c", HTTP_AUTHORIZATION=f"Bearer {kv.secret}") for _ in range(2)]
    assert [a[1]["X-Cache"] if a else None for a in after] == ["miss", "hit"]
    assert after[1] is not None
    assert json.loads(after[1][2])["value"] == 2


def test_reads_that_nearly_all_miss_cold_are_one_statement_without_a_lookup(
    app: FastPath, kv: KV, other: KV, monkeypatch: Any
) -> None:
    """core.cache.skip_lookup on the fast path: while nearly every lookup of this process missed cold (random reads
    over a keyspace far larger than the cache), a first read goes to the database alone, the API key's validity
    checked in the same statement; it answers what Django answers. Its second read is looked up and stored, the
    third is a hit; a revoked key is refused at once and another tenant's key never gets the entry."""
    from bazaar.core.cache.state import STATE
    from bazaar.kvstore.models import TenantApiKey

    kv.put("r/1", {"n": 1}, ttl=300)
    django = get_wsgi_application()
    want = _call(django, "/api/kv/keys/r/1", kv.secret)  # Django's own answer (and the key recorded)
    assert want[0] == "200 OK"
    assert _call(django, "/api/kv/keys/r/1", other.secret)[0].startswith("404")
    cache.set_prefix(cache.new_test_prefix())  # nothing of it cached
    assert services.apikey_authenticate(kv.secret) is not None
    lookups = _count_lookups(monkeypatch)
    STATE.cold_rate["kvstore"] = 1.0  # as after a run of cold misses
    STATE.bypasses = 1
    auth = {"HTTP_AUTHORIZATION": f"Bearer {kv.secret}"}
    first = fast_path_only("/api/kv/keys/r/1", **auth)
    assert first is not None
    assert lookups == []  # no round trip to the cache
    assert (first[0], first[1]["X-Cache"], first[1]["ETag"]) == ("200 OK", "miss", want[1]["ETag"])
    assert first[1]["X-Revision"] == want[1]["X-Revision"]
    got, expected = json.loads(first[2]), json.loads(want[2])
    assert got.pop("ttl") <= expected.pop("ttl")
    assert got == expected
    answers = [fast_path_only("/api/kv/keys/r/1", **auth) for _ in range(2)]
    assert [a[1]["X-Cache"] if a else None for a in answers] == ["miss", "hit"]  # looked up: stored, then hit
    assert len(lookups) == 2
    absent = fast_path_only("/api/kv/keys/r/none", **auth)
    assert absent is not None
    assert_refused(absent, 404, "key_not_found")
    assert len(lookups) == 2  # skipped too
    other_answer = fast_path_only("/api/kv/keys/r/1", HTTP_AUTHORIZATION=f"Bearer {other.secret}")
    assert other_answer is not None
    assert_refused(other_answer, 404, "key_not_found")  # the other tenant's key: its own (empty) keyspace
    services.apikey_revoke(key_id=TenantApiKey.objects.get(tenant=kv.tenant).pk)
    assert fast_path_only("/api/kv/keys/r/3", **auth) is None  # the statement found the key revoked
    assert_refused(_call(app, "/api/kv/keys/r/3", kv.secret), 401, "unauthorized")
    assert Entry.objects.filter(tenant=kv.tenant).count() == 1  # reads wrote nothing


def test_a_skipping_read_hands_a_database_error_or_an_over_long_key_to_django(
    app: FastPath, kv: KV, monkeypatch: Any, settings: Any
) -> None:
    """The skipped lookup's failure paths: a database error while reading passes the request to Django (which
    answers from its own connection, 503 while the database is down), and a key over KVSTORE_MAX_KEY_LENGTH gets
    Django's 422; neither writes anything."""
    from django.db import OperationalError

    from bazaar.core.cache.state import STATE
    from bazaar.kvstore import selectors

    kv.put("r/1", 1)
    assert services.apikey_authenticate(kv.secret) is not None
    auth = {"HTTP_AUTHORIZATION": f"Bearer {kv.secret}"}

    def broken(**_: Any) -> bytes:
        raise OperationalError("the database went away")

    monkeypatch.setattr(selectors, "entry_stored_checked", broken)
    STATE.cold_rate["kvstore"] = 1.0
    STATE.bypasses = 1
    assert fast_path_only("/api/kv/keys/r/1", **auth) is None  # skipped, failed: handed over
    monkeypatch.undo()
    status, _headers, body = _call(app, "/api/kv/keys/r/1", kv.secret)  # Django, with its own read
    assert status == "200 OK"
    assert json.loads(body)["value"] == 1
    settings.KVSTORE_MAX_KEY_LENGTH = 4
    STATE.cold_rate["kvstore"] = 1.0
    STATE.bypasses = 1
    assert fast_path_only("/api/kv/keys/r/1234", **auth) is None
    assert_refused(_call(app, "/api/kv/keys/r/1234", kv.secret), 422, "invalid_key")
    assert Entry.objects.filter(tenant=kv.tenant).count() == 1


def test_revoked_key_is_refused_at_once(app: FastPath, kv: KV) -> None:
    kv.put("k", 1)
    _call(app, "/api/kv/keys/k", kv.secret)
    assert _call(app, "/api/kv/keys/k", kv.secret)[1]["X-Cache"] == "hit"
    from bazaar.kvstore.models import TenantApiKey

    services.apikey_revoke(key_id=TenantApiKey.objects.get(tenant=kv.tenant).pk)
    answer = _call(app, "/api/kv/keys/k", kv.secret)
    assert answer[0].startswith("401"), answer[2]
    assert_refused(answer, 401, "unauthorized")


def test_other_tenants_key_never_gets_the_entry(app: FastPath, kv: KV, other: KV) -> None:
    kv.put("k", "acme")
    _call(app, "/api/kv/keys/k", kv.secret)
    assert_refused(_call(app, "/api/kv/keys/k", other.secret), 404, "key_not_found")
    _call(app, "/api/kv/keys/k", other.secret)
    assert_refused(_call(app, "/api/kv/keys/k", other.secret), 404, "key_not_found")


def test_expired_entry_is_not_served_from_the_cache(app: FastPath, kv: KV, monkeypatch: Any) -> None:
    kv.put("t", 1, ttl=5)
    _call(app, "/api/kv/keys/t", kv.secret)
    assert _call(app, "/api/kv/keys/t", kv.secret)[1]["X-Cache"] == "hit"
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 6)
    from django.utils import timezone

    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now + __import__("datetime").timedelta(seconds=6))
    assert_refused(_call(app, "/api/kv/keys/t", kv.secret), 404, "key_not_found")


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
    assert_refused(_call(app, "/api/kv/keys/k", "kv_never-seen-by-this-process-xx"), 401, "unauthorized")
    assert _call(app, "/api/kv/keys/k", kv.secret, QUERY_STRING="x=1")[1]["X-Cache"] == "hit"  # Django's hit
    assert_refused(_call(app, "/api/kv/keys/k", None), 401, "unauthorized")
    assert [a for a in peeks if a[0].entity == "entry"] == []  # no entry was looked up for these


# --- PUT /api/kv/keys/<key> before Django (bazaar.kvstore.fast) -------------------------------------------


def _put(
    app: Any, key: str, payload: Any, secret: str | None, query: str = "", **extra: str
) -> tuple[str, dict[str, str], bytes]:
    body = payload if isinstance(payload, str) else json.dumps(payload)
    if secret:
        extra = {"HTTP_AUTHORIZATION": f"Bearer {secret}", **extra}
    return wsgi_call(app, f"/api/kv/keys/{key}", method="PUT", body=body, QUERY_STRING=query, **extra)


def _version(kv: KV, key: str) -> int | None:
    return Entry.objects.filter(tenant=kv.tenant, key=key).values_list("version", flat=True).first()


def test_plain_put_is_answered_before_django_like_django(kv: KV) -> None:
    kv.put("warm", 0)  # the key is known to this process now
    fast = fast_path_only(
        "/api/kv/keys/a",
        method="PUT",
        body='{"value": {"n": 1}, "ttl": 60}',
        HTTP_AUTHORIZATION=f"Bearer {kv.secret}",
    )
    assert fast is not None, "a plain PUT must not reach Django"
    slow = kv.put("b", {"n": 1}, ttl=60)
    status, headers, body = fast
    assert status == "200 OK"
    fast_json, slow_json = json.loads(body), slow.json()
    assert fast_json.keys() == slow_json.keys()
    assert (fast_json["key"], fast_json["version"], fast_json["op"]) == ("a", 1, "set")
    assert fast_json["expires_at"] is not None
    assert headers["ETag"] == slow["ETag"] == '"1"'
    assert headers["Content-Type"] == slow["Content-Type"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert kv.get("a").json()["value"] == {"n": 1}
    # An update: the version goes up and the cached entry is invalidated.
    fast = fast_path_only(
        "/api/kv/keys/a", method="PUT", body='{"value": 2}', HTTP_AUTHORIZATION=f"Bearer {kv.secret}"
    )
    assert fast is not None
    assert json.loads(fast[2])["version"] == 2
    assert kv.get("a").json()["value"] == 2


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"value": 1, "if_version": 7}, 409, "version_conflict"),
        ({"value": 1, "if_version": 0}, 409, "version_conflict"),
        ({"value": 1, "ttl": -5}, 422, None),
        ({"value": "x" * 70_000}, 413, None),
    ],
)
def test_put_errors_match_djangos_and_write_nothing(
    kv: KV, settings: Any, payload: dict[str, Any], status: int, code: str | None
) -> None:
    settings.KVSTORE_MAX_VALUE_BYTES = 65_536
    kv.put("k", "first")
    fast = fast_path_only(
        "/api/kv/keys/k", method="PUT", body=json.dumps(payload), HTTP_AUTHORIZATION=f"Bearer {kv.secret}"
    )
    assert fast is not None
    slow = kv.call("PUT", "/keys/k", payload)
    assert int(fast[0][:3]) == slow.status_code == status
    assert json.loads(fast[2]) == slow.json()
    assert fast[1]["Content-Type"] == slow["Content-Type"]
    if code:
        assert slow.json()["code"] == code
    assert _version(kv, "k") == 1
    assert kv.get("k").json()["value"] == "first"


@pytest.mark.parametrize(
    ("payload", "query", "key"),
    [
        ('{"value": 1, "ttl": "60"}', "", "k"),  # a string TTL: Ninja's coercion decides
        ('{"value": 1, "extra": true}', "", "k"),  # unknown field: Ninja's 422
        ("[1, 2]", "", "k"),
        ("{not json", "", "k"),
        ('{"value": 1}', "x=1", "k"),
        ('{"value": 1}', "", "caf%C3%A9"),
    ],
)
def test_anything_unusual_goes_to_django_with_its_body(kv: KV, payload: str, query: str, key: str) -> None:
    kv.put("warm", 0)
    extra = {"HTTP_AUTHORIZATION": f"Bearer {kv.secret}", "QUERY_STRING": query}
    assert fast_path_only(f"/api/kv/keys/{key}", method="PUT", body=payload, **extra) is None
    app = FastPath(get_wsgi_application())
    status, _headers, body = wsgi_call(app, f"/api/kv/keys/{key}", method="PUT", body=payload, **extra)
    slow = kv.client.generic(
        "PUT",
        f"/api/kv/keys/{key}" + (f"?{query}" if query else ""),
        payload,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {kv.secret}",
    )
    # Django saw the same body: the same status and error (the first of two writes makes version 1, then 2).
    assert int(status[:3]) == slow.status_code, body
    if slow.status_code >= 400:
        assert json.loads(body)["code"] == slow.json()["code"]


def test_put_with_unknown_or_revoked_key_is_401_and_writes_nothing(kv: KV) -> None:
    from bazaar.kvstore.models import TenantApiKey

    app = FastPath(get_wsgi_application())
    assert_refused(_put(app, "k", {"value": 1}, "kv_not-a-real-key"), 401, "unauthorized")
    assert not Entry.objects.exists()
    kv.put("k", "before")
    services.apikey_revoke(key_id=TenantApiKey.objects.get(tenant=kv.tenant).pk)
    assert_refused(_put(app, "k", {"value": "after"}, kv.secret), 401, "unauthorized")
    assert list(Entry.objects.values_list("key", "value", "version")) == [("k", '"before"', 1)]


def test_oversized_put_gets_djangos_413(kv: KV, settings: Any) -> None:
    settings.MAX_REQUEST_BODY_BYTES = 1000
    app = FastPath(get_wsgi_application())
    answer = _put(app, "k", {"value": "x" * 2000}, kv.secret)
    assert_refused(answer, 413, "payload_too_large")
    assert _version(kv, "k") is None
