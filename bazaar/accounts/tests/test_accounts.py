"""Signup, login throttling, logout, CSRF, and API tokens (page, API, CLI)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from bazaar.accounts.models import ApiToken, User
from bazaar.accounts.services import token_digest
from bazaar.core.testing import assert_page_refused, assert_refused

PASSWORD = "correct-horse-battery"


def assert_not_signed_in(client: Client) -> None:
    """A refused login wrote nothing: no session for a user, no last_login on any account."""
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(last_login__isnull=False).exists()


def tokens_state() -> list[Any]:
    return list(ApiToken.objects.order_by("pk").values_list("pk", "user_id", "name", "digest", "revoked_at"))


@pytest.mark.django_db
def test_signup_creates_user_and_logs_in(client: Client) -> None:
    r = client.post(
        "/accounts/signup/",
        {"username": "bob", "email": "bob@example.com", "password": PASSWORD, "password_again": PASSWORD},
    )
    assert r.status_code == 302
    user = User.objects.get(username="bob")
    assert user.check_password(PASSWORD)
    assert client.get("/api/accounts/me").json()["username"] == "bob"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "too short"), ("password123", "too common"), ("12345678901", "entirely numeric")],
)
def test_signup_runs_password_validators_and_writes_nothing(
    client: Client, password: str, message: str
) -> None:
    r = client.post(
        "/accounts/signup/", {"username": "bob", "password": password, "password_again": password}
    )
    assert r.status_code == 200
    assert message in r.content.decode()
    assert not User.objects.filter(username="bob").exists()


@pytest.mark.django_db
def test_signup_duplicate_username_writes_nothing(client: Client, make_user: Any) -> None:
    make_user("bob")
    r = client.post(
        "/accounts/signup/", {"username": "BOB", "password": PASSWORD, "password_again": PASSWORD}
    )
    assert r.status_code == 200
    assert "taken" in r.content.decode()
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_forms_are_csrf_protected(make_user: Any) -> None:
    make_user("alice")
    strict = Client(enforce_csrf_checks=True)
    r = strict.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert_page_refused(r, 403, "CSRF verification failed")
    assert_not_signed_in(strict)
    r = strict.post("/accounts/signup/", {"username": "x", "password": PASSWORD, "password_again": PASSWORD})
    assert_page_refused(r, 403, "CSRF verification failed")
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]
    strict.get("/accounts/login/")
    token = strict.cookies["csrftoken"].value
    ok = strict.post(
        "/accounts/login/", {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert ok.status_code == 302


@pytest.mark.django_db
def test_login_and_logout(client: Client, make_user: Any) -> None:
    make_user("alice")
    assert client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    assert client.get("/api/accounts/me").status_code == 200
    assert client.get("/accounts/logout/").status_code == 405  # logout is POST only
    assert client.get("/api/accounts/me").status_code == 200  # ... and a GET signed nobody out
    assert client.post("/accounts/logout/").status_code == 302
    assert_refused(client.get("/api/accounts/me"), 401, "unauthorized")


@pytest.mark.django_db
def test_login_rejects_open_redirect(client: Client, make_user: Any) -> None:
    make_user("alice")
    r = client.post(
        "/accounts/login/", {"username": "alice", "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert r["Location"] == "/"


@pytest.mark.django_db
def test_login_throttled_per_account(client: Client, make_user: Any, settings: Any) -> None:
    settings.LOGIN_THROTTLE_PER_ACCOUNT = 3
    make_user("alice")
    for _ in range(3):
        r = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
        assert_page_refused(r, 400, "Wrong username or password.")
        assert_not_signed_in(client)
    # Even the right password is refused while throttled.
    r = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert r.status_code == 429
    assert "Too many failed logins" in r.content.decode()
    assert_page_refused(r, 429, "Too many failed logins for this account; try again later.")
    assert_refused(client.get("/api/accounts/me"), 401, "unauthorized")
    assert_not_signed_in(client)


@pytest.mark.django_db
def test_login_throttled_per_ip(client: Client, make_user: Any, settings: Any) -> None:
    settings.LOGIN_THROTTLE_PER_IP = 4
    make_user("alice")
    for i in range(4):
        client.post("/accounts/login/", {"username": f"nobody{i}", "password": "wrong"})
    r = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert_page_refused(r, 429, "Too many failed logins from this address; try again later.")
    assert_not_signed_in(client)


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled_not_everyone(
    client: Client, make_user: Any, settings: Any
) -> None:
    """Behind nginx every request comes from the proxy's address: the per-address limit must apply to the
    client named in X-Forwarded-For (by the trusted proxy), or one client would lock everyone out."""
    settings.LOGIN_THROTTLE_PER_IP = 4
    settings.TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]
    make_user("alice")
    proxy: dict[str, Any] = {"REMOTE_ADDR": "127.0.0.1"}
    for i in range(4):  # an attacker at 203.0.113.9, behind two trusted hops, spoofing a left-most address
        client.post(
            "/accounts/login/",
            {"username": f"nobody{i}", "password": "wrong"},
            HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9, 10.1.2.3",
            **proxy,
        )
    blocked = client.post(
        "/accounts/login/",
        {"username": "alice", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.9",
        **proxy,
    )
    assert_page_refused(blocked, 429, "Too many failed logins from this address; try again later.")
    assert_not_signed_in(client)
    other = client.post(
        "/accounts/login/",
        {"username": "alice", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="192.0.2.7",
        **proxy,
    )
    assert other.status_code == 302  # another client behind the same proxy logs in


@pytest.mark.django_db
def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    client: Client, make_user: Any, settings: Any
) -> None:
    settings.LOGIN_THROTTLE_PER_IP = 4
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    make_user("alice")
    for i in range(4):  # rotating a forged header does not escape the per-address limit
        client.post(
            "/accounts/login/",
            {"username": f"nobody{i}", "password": "wrong"},
            REMOTE_ADDR="203.0.113.9",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{i}",
        )
    r = client.post(
        "/accounts/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="203.0.113.9"
    )
    assert_page_refused(r, 429, "Too many failed logins from this address; try again later.")
    assert_not_signed_in(client)


@pytest.mark.django_db
def test_token_page_shows_secret_once_and_stores_hash(client: Client, make_user: Any) -> None:
    user = make_user("alice")
    client.force_login(user)
    r = client.post("/accounts/tokens/", {"name": "laptop"})
    assert r.status_code == 200
    html = r.content.decode()
    token = ApiToken.objects.get(user=user)
    start = html.index('id="new-token">') + len('id="new-token">')
    secret = html[start : html.index("<", start)]
    assert token.digest == token_digest(secret)
    assert secret not in token.digest
    assert secret not in client.get("/accounts/tokens/").content.decode()  # shown once
    bearer = Client()
    assert bearer.get("/api/accounts/me", HTTP_AUTHORIZATION=f"Bearer {secret}").json()["username"] == "alice"
    client.post(f"/accounts/tokens/{token.pk}/revoke/")
    assert_refused(bearer.get("/api/accounts/me", HTTP_AUTHORIZATION=f"Bearer {secret}"), 401, "unauthorized")


@pytest.mark.django_db
def test_cannot_revoke_someone_elses_token(client: Client, make_user: Any, token_for: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    token_for(bob)
    bobs = ApiToken.objects.get(user=bob)
    client.force_login(alice)
    before = tokens_state()
    r = client.post(f"/accounts/tokens/{bobs.pk}/revoke/", follow=True)
    assert r.redirect_chain == [("/accounts/tokens/", 302)]
    assert "No such token." in r.content.decode()
    assert "Token revoked." not in r.content.decode()
    bobs.refresh_from_db()
    assert bobs.revoked_at is None
    assert tokens_state() == before


@pytest.mark.django_db
def test_token_api_create_list_revoke(api_client: Any, make_user: Any, token_for: Any) -> None:
    alice = make_user("alice")
    first = token_for(alice)
    r = api_client.call("POST", "/api/accounts/tokens", data={"name": "ci"}, token=first)
    assert r.status_code == 201
    created = r.json()
    assert created["token"].startswith("bzr_")
    listed = api_client.call("GET", "/api/accounts/tokens", token=first).json()
    assert {t["name"] for t in listed} == {"test", "ci"}
    assert all("token" not in t for t in listed)
    assert api_client.call("DELETE", f"/api/accounts/tokens/{created['id']}", token=first).status_code == 200
    assert_refused(api_client.call("GET", "/api/accounts/me", token=created["token"]), 401, "unauthorized")


@pytest.mark.django_db
def test_token_api_other_users_token_is_404(api_client: Any, make_user: Any, token_for: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    token_for(bob)
    bobs = ApiToken.objects.get(user=bob)
    alices = token_for(alice)
    before = tokens_state()
    r = api_client.call("DELETE", f"/api/accounts/tokens/{bobs.pk}", token=alices)
    assert r.status_code == 404
    assert r.json()["code"] == "token_not_found"
    assert_refused(r, 404, "token_not_found")
    bobs.refresh_from_db()
    assert bobs.revoked_at is None
    assert tokens_state() == before


@pytest.mark.django_db
def test_token_login_endpoint_throttled(api_client: Any, make_user: Any, settings: Any) -> None:
    settings.LOGIN_THROTTLE_PER_ACCOUNT = 2
    make_user("alice")
    ok = api_client.call(
        "POST", "/api/accounts/tokens/login", data={"username": "alice", "password": PASSWORD}
    )
    assert ok.status_code == 201
    before = tokens_state()
    for _ in range(2):
        bad = api_client.call(
            "POST", "/api/accounts/tokens/login", data={"username": "alice", "password": "x"}
        )
        assert_refused(bad, 401, "invalid_credentials")
        assert tokens_state() == before
    r = api_client.call(
        "POST", "/api/accounts/tokens/login", data={"username": "alice", "password": PASSWORD}
    )
    assert r.status_code == 429
    assert r.json()["code"] == "login_throttled"
    assert_refused(r, 429, "login_throttled")
    assert r["Retry-After"] == "60"
    assert ApiToken.objects.count() == 1
    assert tokens_state() == before


@pytest.mark.django_db
def test_token_cli(make_user: Any) -> None:
    make_user("alice")
    out, err = StringIO(), StringIO()
    call_command("token", "create", "alice", "--name", "cli", stdout=out, stderr=err)
    secret = out.getvalue().strip()
    assert ApiToken.objects.get().digest == token_digest(secret)
    listing = StringIO()
    call_command("token", "list", "alice", stdout=listing)
    assert "cli" in listing.getvalue()
    assert "active" in listing.getvalue()
    call_command("token", "revoke", "alice", str(ApiToken.objects.get().pk), stdout=StringIO())
    assert ApiToken.objects.get().revoked_at is not None


@pytest.mark.django_db
def test_demo_is_idempotent() -> None:
    call_command("demo", stdout=StringIO())
    counts = {m.__name__: m.objects.count() for m in (User, ApiToken)}
    call_command("demo", stdout=StringIO())
    assert {m.__name__: m.objects.count() for m in (User, ApiToken)} == counts


@pytest.mark.django_db
def test_demo_prints_links_for_the_server_actually_started() -> None:
    out = StringIO()
    call_command("demo", "--base-url", "http://127.0.0.1:8011/", stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:8011/s/demo-shop/" in text
    assert "http://127.0.0.1:8011/api/kv/keys/greeting" in text
    assert "127.0.0.1:8000" not in text


@pytest.mark.django_db(transaction=True)
def test_cached_token_costs_no_query_and_revocation_is_immediate(
    api_client: Any, make_user: Any, token_for: Any, django_assert_num_queries: Any
) -> None:
    alice = make_user("alice", is_staff=True)
    secret = token_for(alice)
    token = ApiToken.objects.get()
    assert api_client.call("GET", "/api/accounts/me", token=secret).json()["is_staff"] is True
    from bazaar.accounts.services import token_authenticate

    with django_assert_num_queries(0):
        user = token_authenticate(secret)
    assert user is not None
    assert (user.pk, user.username, user.is_staff) == (alice.pk, "alice", True)
    r = api_client.call("DELETE", f"/api/accounts/tokens/{token.pk}", token=secret)
    assert r.status_code == 200
    assert token_authenticate(secret) is None
    assert_refused(api_client.call("GET", "/api/accounts/me", token=secret), 401, "unauthorized")
