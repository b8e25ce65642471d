from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import OperationalError, connections


@pytest.mark.django_db
def test_healthz(client: Any) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_each_dependency(client: Any, settings: Any) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["checks"]["database"]["status"] == "ok"
    expected_cache = "ok" if settings.REDIS_URL else "embedded"
    assert body["checks"]["cache"]["status"] == expected_cache
    assert body["checks"]["broker"]["status"] == ("ok" if settings.CELERY_BROKER_URL else "eager")
    assert body["status"] == "ok"


@pytest.mark.django_db
def test_readyz_503_when_database_down(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:

    class DeadCursor:
        def __enter__(self) -> Any:
            raise OperationalError("connection refused")

        def __exit__(self, *a: Any) -> None:
            return None

    # On the class: the probe runs in a thread of its own, with that thread's connection.
    monkeypatch.setattr(type(connections["default"]), "cursor", lambda self: DeadCursor())
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "down"
    assert r.json()["checks"]["database"]["status"] == "down"


@pytest.mark.django_db
def test_readyz_answers_timeout_when_the_database_does_not_answer(
    client: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """A paused PostgreSQL accepts the query and never answers: the probe answers "timeout" at READYZ_TIMEOUT."""
    from bazaar.core import health

    settings.READYZ_TIMEOUT = 0.2
    release = threading.Event()
    monkeypatch.setattr(health, "_select_one", lambda result: release.wait(30))
    try:
        r = client.get("/readyz")
    finally:
        release.set()
    assert r.status_code == 503
    assert r.json()["status"] == "down"
    assert r.json()["checks"]["database"] == {"status": "timeout", "error": "no answer within 0.2 s"}


@pytest.mark.django_db
def test_metrics_exposes_requests_and_cache_counters(client: Any) -> None:
    client.get("/")
    client.get("/")
    r = client.get("/metrics")
    assert r.status_code == 200
    text = r.content.decode()
    assert "bazaar_http_requests_total" in text
    assert 'bazaar_cache_events_total{app="core",event="hit"}' in text
    assert "bazaar_http_request_duration_seconds_bucket" in text


@pytest.mark.django_db
def test_home_links_every_part(client: Any) -> None:
    r = client.get("/")
    assert r.status_code == 200
    html = r.content.decode()
    for link in [
        "/storefront/",
        "/rentals/",
        "/trading/",
        "/api/docs",
        "/admin/",
        "/healthz",
        "/readyz",
        "/metrics",
    ]:
        assert f'href="{link}' in html, link
    assert r["ETag"]
    again = client.get("/", HTTP_IF_NONE_MATCH=r["ETag"])
    assert again.status_code == 304


@pytest.mark.django_db
def test_admin_login_page(client: Any) -> None:
    assert client.get("/admin/login/").status_code == 200
