from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError


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
    from bazaar.core import health

    class DeadCursor:
        def __enter__(self) -> Any:
            raise OperationalError("connection refused")

        def __exit__(self, *a: Any) -> None:
            return None

    monkeypatch.setattr(health.connection, "cursor", lambda: DeadCursor())
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "down"
    assert r.json()["checks"]["database"]["status"] == "down"


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
