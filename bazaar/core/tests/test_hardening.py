"""Hardening: /metrics behind a token or an allow-list, one Content-Security-Policy and the security headers on
every response (error pages included), no shared or browser caching of signed-in pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from bazaar.core.middleware import with_csp

pytestmark = pytest.mark.django_db

CSP = django_settings.CONTENT_SECURITY_POLICY


def test_metrics_only_from_the_allowed_addresses_without_a_token(client: Client) -> None:
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    r = client.get("/metrics", REMOTE_ADDR="203.0.113.7")
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    assert b"bazaar_http_requests_total" not in r.content


def test_metrics_with_a_token_need_exactly_that_bearer(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = "scrape-me-0123456789"
    for given in ("", "Bearer wrong", "scrape-me-0123456789", "Bearer scrape-me-012345678"):
        r = client.get("/metrics", HTTP_AUTHORIZATION=given)
        assert (r.status_code, r.json()["code"], r["WWW-Authenticate"]) == (
            401,
            "unauthorized",
            'Bearer realm="metrics"',
        )
    r = client.get("/metrics", REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION="Bearer scrape-me-0123456789")
    assert r.status_code == 200
    assert b"bazaar_http_requests_total" in r.content


def _security_headers(r: Any) -> tuple[str, str, str, str]:
    return (
        r["Content-Security-Policy"],
        r["X-Frame-Options"],
        r["X-Content-Type-Options"],
        r["Referrer-Policy"],
    )


@pytest.mark.parametrize(
    ("method", "path", "extra", "status"),
    [
        ("get", "/", {}, 200),
        ("get", "/api/rentals/titles", {}, 200),
        ("get", "/no-such-page/", {}, 404),
        ("get", "/api/no-such-endpoint", {}, 404),
        ("get", "/", {"HTTP_HOST": "evil.example"}, 400),  # DisallowedHost
        ("post", "/api/kv/batch", {"CONTENT_LENGTH": str(50 * 1024 * 1024)}, 413),
    ],
)
def test_every_response_carries_the_policy_and_the_security_headers(
    client: Client, method: str, path: str, extra: dict[str, str], status: int
) -> None:
    r = getattr(client, method)(path, **extra)
    assert r.status_code == status
    assert _security_headers(r) == (CSP, "DENY", "nosniff", "same-origin")


def test_signed_in_pages_are_private_and_never_stored(client: Client, make_user: Any) -> None:
    anonymous = client.get("/rentals/")
    assert "no-store" not in anonymous.get("Cache-Control", "")
    client.force_login(make_user("reader"))
    for path in ("/", "/rentals/", "/accounts/tokens/", "/trading/"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r["Cache-Control"] == "private, no-store", path
        assert "Cookie" in r["Vary"], path


def test_the_fast_path_answers_get_the_same_policy() -> None:
    def fast(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html"), ("X-Frame-Options", "DENY")])
        return [b"<p>cached</p>"]

    seen: list[list[tuple[str, str]]] = []
    assert with_csp(fast)({}, lambda status, headers, exc_info=None: seen.append(headers)) == [
        b"<p>cached</p>"
    ]
    assert seen == [
        [("Content-Type", "text/html"), ("X-Frame-Options", "DENY"), ("Content-Security-Policy", CSP)]
    ]


def test_no_template_has_an_inline_script_style_or_handler() -> None:
    """What the policy would block: ``<script>`` without src, ``<style>``, style="", onclick="" and friends."""
    root = Path(__file__).resolve().parents[2]
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>|<style\b|\sstyle=|\son[a-z]+=", re.I
    )
    found = [
        f"{path.relative_to(root)}: {match.group()}"
        for path in root.glob("**/templates/**/*.html")
        # Mail bodies are no page of this origin (no CSP applies) and mail clients drop stylesheets.
        if "email" not in path.parts
        for match in inline.finditer(path.read_text())
    ]
    assert found == []
