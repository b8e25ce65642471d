"""Operations endpoints: /healthz (alive), /readyz (database, cache, broker checked separately), /metrics."""

from __future__ import annotations

import hmac
import json
import socket
import threading
import time
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from bazaar.core import cache, db, metrics, replica
from bazaar.core.http import client_ip, json_error


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b'{"status":"ok"}', content_type="application/json")


def _select_one(result: dict[str, Any]) -> None:
    """In its own thread and connection (closed after), so a hung database never holds the probe."""
    start = time.perf_counter()
    try:
        with db.probe(settings.READYZ_TIMEOUT), connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        result.update(
            status="ok", vendor=connection.vendor, ms=round((time.perf_counter() - start) * 1000, 2)
        )
    except Exception as exc:
        result.update(status="down", error=str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
    finally:
        connection.close()


def _check_database() -> dict[str, Any]:
    """``SELECT 1`` within READYZ_TIMEOUT: "ok", "down" (refused, failed) or "timeout" (no answer in time, as
    when PostgreSQL is paused or its disk hangs), so a probe answers in time whatever the database does."""
    result: dict[str, Any] = {}
    probe = threading.Thread(target=_select_one, args=(result,), name="readyz-db", daemon=True)
    probe.start()
    probe.join(settings.READYZ_TIMEOUT)
    if probe.is_alive() or not result:
        return {"status": "timeout", "error": f"no answer within {settings.READYZ_TIMEOUT:g} s"}
    return result


def _check_broker() -> dict[str, Any]:
    url = settings.CELERY_BROKER_URL
    if not url:
        return {"status": "eager"}
    # A Redis broker behind Sentinel is spelled "sentinel://h1:p1/db;sentinel://h2:p2/db": up while one answers.
    error = "no broker address"
    for part in url.split(";"):
        try:
            parsed = urlparse(part)
            port = parsed.port or {"amqp": 5672, "redis": 6379, "sentinel": 26379}.get(parsed.scheme, 5672)
            with socket.create_connection((parsed.hostname or "127.0.0.1", port), timeout=0.5):
                return {"status": "ok"}
        except (OSError, ValueError) as exc:
            error = str(exc)
    return {"status": "down", "error": error}


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """200 when the database answers (cache/broker trouble is 'degraded', still serving); 503 without a database."""
    db = _check_database()
    cache_status = cache.check()
    broker = _check_broker()
    checks = {"database": db, "cache": {"status": cache_status}, "broker": broker}
    if replica.configured():  # informational: reads fall back to the primary whatever it says
        checks["replica"] = replica.check()
    if db["status"] != "ok":
        status, code = "down", 503
    elif cache_status == "degraded" or broker["status"] == "down":
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    body = json.dumps({"status": status, "checks": checks}).encode()
    return HttpResponse(body, status=code, content_type="application/json")


def _metrics_allowed(request: HttpRequest) -> HttpResponse | None:
    """None when the scraper may read /metrics, else the refusal: with METRICS_TOKEN set, the bearer token
    (401 otherwise); without it, the client address must be in METRICS_ALLOWED_IPS (403 otherwise)."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.META.get("HTTP_AUTHORIZATION", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return None
        response = json_error(401, "unauthorized", "/metrics needs Authorization: Bearer <METRICS_TOKEN>.")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if client_ip(request) in settings.METRICS_ALLOWED_IPS:
        return None
    return json_error(403, "forbidden", "/metrics is not open to this address (METRICS_ALLOWED_IPS).")


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    refused = _metrics_allowed(request)
    if refused is not None:
        return refused
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)
