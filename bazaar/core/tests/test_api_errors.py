"""One error shape for the whole API: malformed JSON, validation, unknown fields, oversize, unknown URLs."""

from __future__ import annotations

from typing import Any

import pytest

from bazaar.accounts.models import ApiToken


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
