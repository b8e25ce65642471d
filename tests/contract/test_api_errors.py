"""One error shape for the whole API: malformed JSON, validation, unknown fields, oversize, unknown URLs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bazaar.accounts.models import ApiToken
from tests.contract.matrix_world import (
    KV_A,
    STAFF,
    VENDOR_A,
    snapshot,
    world_fixture,  # noqa: F401  (the ``world`` fixture)
)


@pytest.fixture
def alice_token(make_user: Any, token_for: Any) -> str:
    return str(token_for(make_user("alice")))


def _shape(body: dict[str, Any]) -> None:
    assert set(body) == {"code", "message", "details"}
    assert isinstance(body["message"], str)
    assert body["message"]


@pytest.mark.django_db
def test_unknown_api_url_is_json_404(client: Any) -> None:
    r = client.get("/api/no/such/thing")
    assert r.status_code == 404
    assert r["Content-Type"].startswith("application/json")
    _shape(r.json())
    assert r.json()["code"] == "not_found"


@pytest.mark.django_db
def test_malformed_json_is_400_and_writes_nothing(api_client: Any, alice_token: str) -> None:
    r = api_client.call("POST", "/api/accounts/tokens", data="{not json", token=alice_token)
    assert r.status_code == 400
    _shape(r.json())
    assert r.json()["code"] == "malformed_json"
    assert ApiToken.objects.count() == 1


@pytest.mark.django_db
def test_wrong_type_is_422(api_client: Any, alice_token: str) -> None:
    r = api_client.call("POST", "/api/accounts/tokens", data={"name": ["a", "list"]}, token=alice_token)
    assert r.status_code == 422
    _shape(r.json())
    assert r.json()["code"] == "validation_error"
    assert r.json()["details"][0]["field"] == "name"
    assert ApiToken.objects.count() == 1


@pytest.mark.django_db
def test_unknown_field_is_rejected_not_dropped(api_client: Any, alice_token: str) -> None:
    r = api_client.call("POST", "/api/accounts/tokens", data={"name": "x", "admin": True}, token=alice_token)
    assert r.status_code == 422
    assert r.json()["details"][0]["type"] == "extra_forbidden"
    assert ApiToken.objects.count() == 1


@pytest.mark.django_db
def test_missing_field_is_422(api_client: Any) -> None:
    r = api_client.call("POST", "/api/accounts/tokens/login", data={"username": "x"})
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "password"


@pytest.mark.django_db
def test_oversized_body_is_413_and_writes_nothing(api_client: Any, alice_token: str, settings: Any) -> None:
    settings.MAX_REQUEST_BODY_BYTES = 1000
    r = api_client.call("POST", "/api/accounts/tokens", data={"name": "x" * 2000}, token=alice_token)
    assert r.status_code == 413
    _shape(r.json())
    assert r.json()["code"] == "payload_too_large"
    assert ApiToken.objects.count() == 1


@pytest.mark.django_db
def test_missing_auth_is_401(api_client: Any) -> None:
    r = api_client.call("GET", "/api/accounts/me")
    assert r.status_code == 401
    _shape(r.json())
    assert r.json()["code"] == "unauthorized"


@pytest.mark.django_db
def test_openapi_and_local_docs(client: Any) -> None:
    schema = client.get("/api/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Bazaar API"
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    # Try-it-out with a signed-in session: Ninja's static swagger-ui-init.js sends this token as X-CSRFToken.
    assert 'data-api-csrf="true"' in html
    assert re.search(r'data-csrf-token="[A-Za-z0-9]{32,}"', html)


@pytest.mark.django_db
def test_malformed_multipart_is_json_400(client: Any, make_user: Any, token_for: Any) -> None:
    token = token_for(make_user("staff", is_staff=True))
    r = client.post(
        "/api/trading/import/trainers",
        data=b"--x\r\nnot really multipart",
        content_type="multipart/form-data",  # no boundary
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert r.status_code == 400
    _shape(r.json())
    assert r.json()["code"] == "malformed_body"


@pytest.mark.django_db
def test_openapi_document_is_built_once(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from bazaar.config import api as api_module

    first = client.get("/api/openapi.json")
    assert first.status_code == 200
    monkeypatch.setattr(api_module.api, "get_openapi_schema", lambda **kw: pytest.fail("rebuilt"))
    second = client.get("/api/openapi.json")
    assert second.content == first.content
    assert client.post("/api/openapi.json").status_code == 405


# --- strict JSON types, JSON-only bodies, auth answers (issue 14) -------------------------------------------


def _served(
    path: str, method: str, body: bytes, content_type: str, **extra: str
) -> tuple[int, dict[str, Any]]:
    """A request through the WSGI application as served (the write fast paths in front of Django)."""
    import json

    from bazaar.config.wsgi import application
    from bazaar.core.testing import wsgi_call

    status, _headers, out = wsgi_call(
        application, path, method=method, body=body, CONTENT_TYPE=content_type, **extra
    )
    return int(status[:3]), json.loads(out)


LAX = [True, "1", " 2 ", 2.0, 1.5, None, [1], {"n": 1}]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("quantity", LAX, ids=repr)
def test_order_quantity_must_be_a_json_integer(world: Any, quantity: Any) -> None:
    """``"quantity": true`` once placed an order of one (stock 50 → 49); a boolean, a string or a float is not
    an integer. Through the served app (the order fast path hands them to Django), nothing is written."""
    import json

    body = {
        "items": [{"product_id": world.ids["product_id"], "quantity": quantity}],
        "customer_name": "Asha",
        "phone": "+91 98765 43210",
        "address": "1 Road",
    }
    before = snapshot()
    status, out = _served(
        f"/api/storefront/stores/{world.ids['slug']}/orders",
        "POST",
        json.dumps(body).encode(),
        "application/json",
        HTTP_IDEMPOTENCY_KEY="lax-1",
    )
    assert status == 422, out
    assert out["code"] in ("invalid_type", "validation_error")
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "field",
    [{"ttl": "10"}, {"ttl": True}, {"ttl": 10.0}, {"if_version": "1"}, {"if_version": False}],
    ids=repr,
)
def test_kv_numbers_are_not_converted(world: Any, field: dict[str, Any]) -> None:
    import json

    before = snapshot()
    status, out = _served(
        f"/api/kv/keys/{world.ids['key']}",
        "PUT",
        json.dumps({"value": "new", **field}).encode(),
        "application/json",
        HTTP_AUTHORIZATION=f"Bearer {world.secrets[KV_A]}",
    )
    assert status == 422, out
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("birth", "code"),
    [
        (0, "invalid_type"),
        (19990101, "invalid_type"),
        ("9999-01-01", "out_of_range"),
        ("1800-01-01", "out_of_range"),
    ],
)
def test_dates_are_iso_strings_within_sane_years(world: Any, client: Any, birth: Any, code: str) -> None:
    before = snapshot()
    r = client.post(
        "/api/trading/trainers",
        {"id": "tZ", "first_name": "Z", "last_name": "Z", "date_of_birth": birth},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {world.secrets[STAFF]}",
    )
    assert (r.status_code, r.json()["code"]) == (422, code), r.json()
    assert snapshot() == before


NOT_JSON = [
    ("text/plain", b'{"value": "x"}'),
    ("application/xml", b"<value>x</value>"),
    ("application/x-www-form-urlencoded", b"value=x"),
    (
        "multipart/form-data; boundary=b",
        b'--b\r\nContent-Disposition: form-data; name="value"\r\n\r\nx\r\n--b--\r\n',
    ),
    ("", b'{"value": "x"}'),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("content_type", "body"), NOT_JSON, ids=[c or "none" for c, _ in NOT_JSON])
def test_kv_put_takes_json_only(world: Any, content_type: str, body: bytes) -> None:
    """``PUT /api/kv/keys/x`` with ``text/plain`` (or XML, a form, multipart) was written as JSON; now 415 from
    the fast path's fallback and Django alike, and the entry is as it was."""
    before = snapshot()
    status, out = _served(
        f"/api/kv/keys/{world.ids['key']}",
        "PUT",
        body,
        content_type,
        HTTP_AUTHORIZATION=f"Bearer {world.secrets[KV_A]}",
    )
    assert (status, out["code"]) == (415, "unsupported_media_type")
    assert snapshot() == before


@pytest.mark.django_db
def test_json_body_with_another_content_type_is_415(api_client: Any, alice_token: str) -> None:
    def send(content_type: str) -> Any:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {alice_token}"}
        return api_client.client.post(
            "/api/accounts/tokens", '{"name": "x"}', content_type=content_type, **headers
        )

    r = send("text/plain")
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_media_type")
    assert ApiToken.objects.count() == 1
    assert send("application/json; charset=utf-8").status_code == 201


@pytest.mark.django_db
def test_session_auth_answers_401_before_csrf(world: Any) -> None:
    """With CSRF enforced (as in production): anonymous → 401 with WWW-Authenticate, never "CSRF check Failed";
    a signed-in session without the token → 403 ``csrf_failed``; with it → the write happens."""
    from django.test import Client

    anonymous = Client(enforce_csrf_checks=True)
    before = snapshot()
    for path, body in (
        ("/api/rentals/rentals", {"title_id": 1, "customer_id": 1}),
        ("/api/trading/offers", {}),
        ("/api/storefront/products", {"name": "x"}),
        ("/api/accounts/tokens", {"name": "x"}),
    ):
        r = anonymous.post(path, body, content_type="application/json")
        assert (r.status_code, r.json()["code"]) == (401, "unauthorized"), path
        assert r["WWW-Authenticate"].startswith("Bearer")
    signed_in = Client(enforce_csrf_checks=True)
    signed_in.force_login(world.users[VENDOR_A])
    r = signed_in.post("/api/accounts/tokens", {"name": "x"}, content_type="application/json")
    assert (r.status_code, r.json()["code"]) == (403, "csrf_failed")
    assert snapshot() == before
    signed_in.get("/api/docs")  # sets the csrftoken cookie
    token = signed_in.cookies["csrftoken"].value
    r = signed_in.post(
        "/api/accounts/tokens", {"name": "x"}, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert r.status_code == 201


@pytest.mark.django_db
def test_valid_non_staff_credentials_are_403_naming_the_right(world: Any, client: Any) -> None:
    for path in ("/api/rentals/customers", "/api/kv/tenants"):
        r = client.get(path, HTTP_AUTHORIZATION=f"Bearer {world.secrets[VENDOR_A]}")
        assert (r.status_code, r.json()["code"]) == (403, "staff_required"), path
        bad = client.get(path, HTTP_AUTHORIZATION="Bearer not-a-token")
        assert (bad.status_code, bad.json()["code"]) == (401, "unauthorized")
        assert "WWW-Authenticate" in bad


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["TRACE", "PATCH"])
def test_json_405_names_the_allowed_methods(client: Any, method: str) -> None:
    r = client.generic(method, "/api/accounts/me")
    assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")
    assert set(r["Allow"].replace(" ", "").split(",")) >= {"GET"}
    o = client.generic(method, "/api/openapi.json")
    assert o.status_code == 405
    assert o["Allow"] == "GET, HEAD"


# --- the error vocabulary is a contract: registries and the OpenAPI document ---------------------------------

#: A code handed to an error: ``code="…"``, ``"code": "…"``, ``json_error(400, "…"``, ``_error(request, 400, "…"``,
#: a ``code = "…"`` class attribute, annotated or not (``code: ClassVar[str] = "…"`` once slipped past).
_RAISED = re.compile(
    r"""(?:\bcode\s*(?::\s*[\w\[\]]+\s*)?=\s*|["']code["']\s*:\s*|json_error\(\s*\d+\s*,\s*|_error\(\s*request\s*,\s*\d+\s*,\s*)"""
    r"""["']([a-z][a-z0-9_]*)["']"""
)
#: Not error codes: the health checks' component states.
_NOT_ERRORS = {"bazaar/core/health.py"}


def test_every_raised_code_is_in_a_registry() -> None:
    from bazaar.config.openapi import error_codes

    root = Path(__file__).resolve().parents[2]
    registries = error_codes()
    core = set(registries["accounts"]) - {
        c.value for c in __import__("bazaar.accounts.codes").accounts.codes.Code
    }
    missing: dict[str, set[str]] = {}
    for path in (root / "bazaar").rglob("*.py"):
        rel = path.relative_to(root)
        if "tests" in rel.parts or "migrations" in rel.parts or str(rel) in _NOT_ERRORS:
            continue
        app = rel.parts[1]
        known = set(registries.get(app, [])) | core
        unknown = set(_RAISED.findall(path.read_text())) - known
        if unknown:
            missing[str(rel)] = unknown
    assert missing == {}, f"codes raised but not in bazaar/<app>/codes.py or bazaar/core/codes.py: {missing}"


@pytest.mark.django_db
def test_openapi_declares_every_error_with_its_codes(client: Any) -> None:
    schema = client.get("/api/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"userToken", "session", "tenantKey"}
    assert all(s.get("description") for s in schema["components"]["securitySchemes"].values())
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            responses = op["responses"]
            assert "503" in responses, where
            if op.get("security"):
                assert "401" in responses, where
                assert "WWW-Authenticate" in responses["401"]["headers"], where
            if op.get("requestBody", {}).get("content", {}).get("application/json"):
                assert {"400", "413", "415", "422"} <= set(responses), where
            for status, answer in responses.items():
                if int(status) >= 400:
                    codes = answer["content"]["application/json"]["schema"]["properties"]["code"]["enum"]
                    assert codes, where
    # Per operation and status, not per app: a KV read cannot answer batch_too_large.
    get_key = _codes(schema, "get", "/api/kv/keys/{key}")
    assert get_key == {
        "401": ["unauthorized"],
        "404": ["key_not_found", "not_found"],
        "422": ["invalid_key"],
        "503": ["database_unavailable"],
    }
    put_key = _codes(schema, "put", "/api/kv/keys/{key}")
    assert put_key["409"] == ["conflict_retry", "version_conflict"]
    assert {"invalid_ttl", "invalid_type", "validation_error"} <= set(put_key["422"])
    assert "batch_too_large" not in {c for codes in put_key.values() for c in codes}
    # staff_auth: 403 staff_required; a session write: 403 csrf_failed; a tenant key: no 403 at all.
    assert _codes(schema, "get", "/api/kv/tenants")["403"] == ["staff_required"]
    assert _codes(schema, "post", "/api/kv/tenants")["403"] == ["csrf_failed", "staff_required"]
    assert "403" not in put_key
    orders = schema["paths"]["/api/storefront/stores/{slug}/orders"]["post"]
    key = next(p for p in orders["parameters"] if p["name"] == "Idempotency-Key")
    assert key["required"] is True
    limit = next(
        p for p in schema["paths"]["/api/rentals/customers"]["get"]["parameters"] if p["name"] == "limit"
    )
    bounds = next(s for s in limit["schema"].get("anyOf", [limit["schema"]]) if s.get("type") == "integer")
    assert (bounds["minimum"], bounds["maximum"]) == (1, 200)
    quote = schema["paths"]["/api/rentals/price-plans/{kind}/quote"]["get"]["parameters"]
    days = next(p for p in quote if p["name"] == "days")["schema"]
    assert (days["minimum"], days["maximum"]) == (1, 3650)


def _codes(schema: dict[str, Any], method: str, path: str) -> dict[str, list[str]]:
    responses = schema["paths"][path][method]["responses"]
    return {
        status: answer["content"]["application/json"]["schema"]["properties"]["code"]["enum"]
        for status, answer in responses.items()
        if int(status) >= 400
    }


def test_schema_names_are_unique() -> None:
    """Ninja names a component after its class: two ``PaymentIn`` classes made the storefront's payment body
    documented as the rentals' one. Every schema class of the API has a name of its own."""
    from ninja import Schema

    import bazaar.config.api  # noqa: F401  (imports every app's schemas)

    names: dict[str, set[str]] = {}

    def walk(cls: type) -> None:
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("bazaar.") and ".tests." not in sub.__module__:
                names.setdefault(sub.__name__, set()).add(sub.__module__)
            walk(sub)

    walk(Schema)
    assert {n: m for n, m in names.items() if len(m) > 1} == {}
