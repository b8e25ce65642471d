"""The HTTP API: shapes, status codes, ETag/304, CAS conflicts, limits, cursor paging, auth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bazaar.core.testing import FrozenClock, assert_refused
from bazaar.kvstore.models import Change, Entry, Tenant, TenantApiKey
from bazaar.kvstore.tests.conftest import KV

pytestmark = pytest.mark.django_db(transaction=True)


def kv_state() -> tuple[Any, ...]:
    """Everything a refused write must leave alone: entries, the change log, tenants and their keys."""
    return (
        list(Entry.objects.order_by("tenant_id", "key").values_list("tenant_id", "key", "value", "version")),
        list(Change.objects.order_by("pk").values_list("tenant_id", "revision", "key", "op", "version")),
        list(Tenant.objects.order_by("pk").values_list("slug", "name", "revision")),
        list(TenantApiKey.objects.order_by("pk").values_list("tenant_id", "name", "revoked_at")),
    )


def _import(kv: KV, body: str) -> Any:
    return kv.client.post(
        "/api/kv/import", body, content_type="application/x-ndjson", HTTP_AUTHORIZATION=f"Bearer {kv.secret}"
    )


@contextmanager
def writes_nothing() -> Iterator[None]:
    before = kv_state()
    yield
    assert kv_state() == before


def test_put_then_get(kv: KV, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FrozenClock(monkeypatch)
    r = kv.put("config/db", {"host": "db1", "port": 5432}, ttl=60)
    assert r.status_code == 200
    body = r.json()
    assert (body["key"], body["version"], body["op"]) == ("config/db", 1, "set")
    assert r["ETag"] == '"1"'
    g = kv.get("config/db")
    assert g.status_code == 200
    assert g["ETag"] == '"1"'
    assert g["Cache-Control"] == "private, no-cache"
    assert g["Content-Type"] == "application/json"
    data = g.json()
    assert data["value"] == {"host": "db1", "port": 5432}
    assert data["version"] == 1
    assert data["ttl"] == 60
    assert data["created_at"].endswith("Z")
    assert data["expires_at"].endswith("Z")
    assert g["X-Cache"] == "miss"
    clock.advance(
        30.5
    )  # the TTL left is rounded up to the second, and counted at read time from the cached entry
    hit = kv.get("config/db")
    assert hit["X-Cache"] == "hit"
    assert hit.json()["ttl"] == 30


def test_if_none_match_gives_304(kv: KV) -> None:
    kv.put("k", "v")
    r = kv.get("k", HTTP_IF_NONE_MATCH='"1"')
    assert r.status_code == 304
    assert r.content == b""
    kv.put("k", "v2")
    assert kv.get("k", HTTP_IF_NONE_MATCH='"1"').status_code == 200


def test_missing_key_is_404(kv: KV) -> None:
    r = kv.get("nope")
    assert r.status_code == 404
    assert r.json()["code"] == "key_not_found"


def test_cas_conflict_is_409_with_the_current_version(kv: KV) -> None:
    kv.put("c", 1)
    r = kv.put("c", 2, if_version=5)
    assert r.status_code == 409
    assert r.json()["code"] == "version_conflict"
    assert r.json()["details"]["current_version"] == 1
    assert kv.get("c").json()["value"] == 1
    assert kv.put("c", 2, if_version=1).json()["version"] == 2
    with writes_nothing():
        r = kv.put("c", 9, if_version=0)
    assert assert_refused(r, 409, "version_conflict")["details"]["current_version"] == 2


def test_value_too_large_is_413_and_writes_nothing(kv: KV, settings: Any) -> None:
    settings.KVSTORE_MAX_VALUE_BYTES = 1000
    r = kv.put("big", "x" * 2000)
    assert r.status_code == 413
    assert r.json()["code"] == "value_too_large"
    assert not Entry.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"value": 1, "colour": "red"}, 422, "validation_error"),
        ({"ttl": 5}, 422, "validation_error"),
        ({"value": 1, "ttl": 0}, 422, "invalid_ttl"),
        ({"value": 1, "if_version": -1}, 422, "invalid_if_version"),
        ("{not json", 400, "malformed_json"),
    ],
)
def test_bad_bodies_write_nothing(kv: KV, body: Any, status: int, code: str) -> None:
    r = kv.call("PUT", "/keys/k", body)
    assert r.status_code == status, r.content
    assert r.json()["code"] == code
    assert not Entry.objects.exists()


def test_a_lone_surrogate_in_a_value_is_refused_on_every_write_path(kv: KV) -> None:
    """JSON may escape a lone surrogate ("\\ud800"); no UTF-8 text can hold one: 422, never a 500."""
    with writes_nothing():
        r = kv.call("PUT", "/keys/k", '{"value": ["ok", "\\ud800"]}')
    assert_refused(r, 422, "invalid_text")
    assert "U+D800" in r.json()["message"]
    with writes_nothing():
        r = _import(kv, '{"key": "a", "value": 1}\n{"key": "b", "value": "x\\udfff"}\n')
    assert_refused(r, 422, "invalid_text")
    assert r.json()["details"] == {"line": 2}


def test_control_characters_in_the_key_are_refused(kv: KV) -> None:
    r = kv.call("PUT", "/keys/a%07b", {"value": 1})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_key"
    assert not Entry.objects.exists()


def test_delete(kv: KV) -> None:
    kv.put("d", 1)
    with writes_nothing():
        assert_refused(kv.call("DELETE", "/keys/d?if_version=3"), 409, "version_conflict")
    assert kv.call("DELETE", "/keys/d").status_code == 204
    assert_refused(kv.get("d"), 404, "key_not_found")
    with writes_nothing():
        r = kv.call("DELETE", "/keys/d")
    assert r.status_code == 404
    assert r.json()["code"] == "key_not_found"


def test_listing_with_cursor(kv: KV) -> None:
    for i in range(5):
        kv.put(f"p/{i}", i)
    kv.put("q", "other")
    r = kv.call("GET", "/keys?prefix=p/&limit=2")
    page = r.json()
    assert [i["key"] for i in page["items"]] == ["p/0", "p/1"]
    keys = [i["key"] for i in page["items"]]
    while page["next_cursor"]:
        page = kv.call("GET", f"/keys?prefix=p/&limit=2&cursor={page['next_cursor']}").json()
        keys += [i["key"] for i in page["items"]]
    assert keys == [f"p/{i}" for i in range(5)]
    assert_refused(kv.call("GET", "/keys?limit=100000"), 422, "invalid_limit")


def test_batch_all_or_nothing(kv: KV) -> None:
    kv.put("x", 1)
    ops = {"ops": [{"op": "set", "key": "y", "value": 2}, {"op": "delete", "key": "x", "if_version": 9}]}
    with writes_nothing():
        r = kv.call("POST", "/batch", ops)
    assert r.status_code == 409
    assert r.json()["details"]["index"] == 1
    assert_refused(r, 409, "version_conflict")
    assert list(Entry.objects.values_list("key", flat=True)) == ["x"]
    ops["ops"][1]["if_version"] = 1
    r = kv.call("POST", "/batch", ops)
    assert r.status_code == 200
    assert [(x["op"], x["key"], x["version"]) for x in r.json()["results"]] == [
        ("set", "y", 1),
        ("delete", "x", 2),
    ]
    with writes_nothing():
        r = kv.call("POST", "/batch", {"ops": [{"op": "set", "key": "z"}]})
    assert r.status_code == 422
    assert r.json()["code"] == "missing_value"


def test_import_endpoint(kv: KV) -> None:
    body = '{"key": "a", "value": 1}\n{"key": "b", "value": [2]}\n'
    r = _import(kv, body)
    assert r.status_code == 200
    assert r.json() == {"imported": 2}
    with writes_nothing():
        r = _import(kv, '{"key": "c", "value": 1}\nnope\n')
    assert r.status_code == 422
    assert r.json()["details"] == {"line": 2}
    assert_refused(r, 422, "invalid_record")
    assert Entry.objects.count() == 2


def test_auth_required_and_revoked_keys_refused(kv: KV) -> None:
    kv.put("k", 1)
    assert_refused(kv.client.get("/api/kv/keys/k"), 401, "unauthorized")
    assert_refused(kv.call("GET", "/keys/k", secret="kv_wrong-secret-of-some-length"), 401, "unauthorized")
    with writes_nothing():  # a refused write, without and with a wrong key
        assert_refused(
            kv.client.put("/api/kv/keys/k", "{}", content_type="application/json"), 401, "unauthorized"
        )
        assert_refused(
            kv.call("PUT", "/keys/k", {"value": 2}, secret="kv_wrong-secret-of-some-length"),
            401,
            "unauthorized",
        )
    from bazaar.kvstore import services

    services.apikey_revoke(key_id=TenantApiKey.objects.get().pk)
    assert_refused(kv.get("k"), 401, "unauthorized")
    with writes_nothing():
        assert_refused(kv.put("k", 2), 401, "unauthorized")


def test_user_tokens_do_not_open_tenant_data(kv: KV, make_user: Any, token_for: Any) -> None:
    kv.put("k", 1)
    staff = make_user("root", is_staff=True)
    assert_refused(kv.call("GET", "/keys/k", secret=token_for(staff)), 401, "unauthorized")
    with writes_nothing():
        assert_refused(kv.call("PUT", "/keys/k", {"value": 2}, secret=token_for(staff)), 401, "unauthorized")


# --- isolation: a key only ever sees its own tenant's data, on every endpoint ---------------------------


def test_isolation_on_every_endpoint(kv: KV, other: KV) -> None:
    other.put("secret", "globex only")
    other.put("shared-name", "globex")
    kv.put("shared-name", "acme")
    # read
    assert_refused(kv.get("secret"), 404, "key_not_found")
    assert kv.get("shared-name").json()["value"] == "acme"
    assert other.get("shared-name").json()["value"] == "globex"
    # list
    assert [i["key"] for i in kv.call("GET", "/keys").json()["items"]] == ["shared-name"]
    # CAS and create-only see only their own tenant's versions
    with writes_nothing():
        assert_refused(kv.put("secret", "mine", if_version=1), 409, "version_conflict")
    assert kv.put("secret", "mine", if_version=0).status_code == 200
    assert other.get("secret").json()["value"] == "globex only"
    # delete
    assert kv.call("DELETE", "/keys/shared-name").status_code == 204
    assert other.get("shared-name").json()["value"] == "globex"
    # batch
    r = kv.call(
        "POST", "/batch", {"ops": [{"op": "delete", "key": "secret"}, {"op": "set", "key": "n", "value": 1}]}
    )
    assert r.status_code == 200
    assert other.get("secret").status_code == 200
    assert_refused(other.get("n"), 404, "key_not_found")
    # import
    _import(kv, '{"key": "imp", "value": 1}')
    assert_refused(other.get("imp"), 404, "key_not_found")
    # staff endpoints refuse tenant keys
    assert_refused(kv.call("GET", "/tenants"), 401, "unauthorized")
    assert_refused(kv.call("GET", f"/tenants/{other.tenant.slug}/keys"), 401, "unauthorized")
    with writes_nothing():
        assert_refused(
            kv.call("POST", f"/tenants/{other.tenant.slug}/keys", {"name": "x"}), 401, "unauthorized"
        )


# --- staff: tenants and keys ----------------------------------------------------------------------------


def test_staff_manage_tenants_and_keys(api_client: Any, make_user: Any, token_for: Any) -> None:
    staff = token_for(make_user("root", is_staff=True))
    plain = token_for(make_user("bob"))
    with writes_nothing():
        r = api_client.call("POST", "/api/kv/tenants", {"slug": "newco"}, token=plain)
        assert_refused(r, 403, "staff_required")
    r = api_client.call("POST", "/api/kv/tenants", {"slug": "newco", "name": "New Co"}, token=staff)
    assert r.status_code == 201
    assert r.json()["slug"] == "newco"
    with writes_nothing():
        r = api_client.call("POST", "/api/kv/tenants", {"slug": "newco"}, token=staff)
        assert r.status_code == 409
        assert r.json()["code"] == "tenant_exists"
        r = api_client.call("POST", "/api/kv/tenants", {"slug": "Bad Slug"}, token=staff)
        assert r.status_code == 422
        assert r.json()["code"] == "invalid_slug"
    r = api_client.call("POST", "/api/kv/tenants/newco/keys", {"name": "ci"}, token=staff)
    assert r.status_code == 201
    created = r.json()
    assert created["secret"].startswith("kv_")
    assert created["prefix"] == created["secret"][:12]
    assert TenantApiKey.objects.get().digest != created["secret"]  # only the digest is stored
    listed = api_client.call("GET", "/api/kv/tenants/newco/keys", token=staff).json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert "secret" not in listed[0]
    # the new key works, then stops working once revoked
    hdr = {"HTTP_AUTHORIZATION": f"Bearer {created['secret']}"}
    assert (
        api_client.client.put(
            "/api/kv/keys/a", json.dumps({"value": 1}), content_type="application/json", **hdr
        ).status_code
        == 200
    )
    r = api_client.call("DELETE", f"/api/kv/tenants/newco/keys/{created['id']}", token=staff)
    assert r.status_code == 200
    assert r.json()["revoked_at"] is not None
    assert_refused(api_client.client.get("/api/kv/keys/a", **hdr), 401, "unauthorized")
    with writes_nothing():
        assert_refused(
            api_client.call("DELETE", "/api/kv/tenants/nope/keys/1", token=staff), 404, "tenant_not_found"
        )
    assert [t["slug"] for t in api_client.call("GET", "/api/kv/tenants", token=staff).json()] == ["newco"]
