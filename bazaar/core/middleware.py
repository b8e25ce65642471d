"""Project-wide middleware: metrics, request-body limits, JSON 404s under /api/, fail-fast 503 on DB outage."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from bazaar.core import metrics
from bazaar.core.http import json_error

log = logging.getLogger("bazaar.http")

Handler = Callable[[HttpRequest], HttpResponse]

#: Paths that accept large uploads (CSV imports); everything else gets MAX_REQUEST_BODY_BYTES.
LARGE_BODY_PREFIXES: tuple[str, ...] = ("/api/trading/import", "/trading/import", "/api/kv/import")


#: Deadlock, serialization failure: the database gave up on this transaction, not on the service.
_CONFLICT_SQLSTATES = {"40P01", "40001"}
CONFLICT_MESSAGE = "The change collided with a concurrent one; try again."


def is_conflict(exc: BaseException) -> bool:
    """A deadlock or serialization failure that escaped a service's own retry: 409 ``conflict_retry``, not 503
    (the database is fine; the request may simply be sent again)."""
    return isinstance(exc, DatabaseError) and getattr(exc.__cause__, "sqlstate", None) in _CONFLICT_SQLSTATES


class MetricsMiddleware:
    """Counts requests by method/status and records Django's time per request; maps DB outages to 503."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self._children: dict[tuple[str, int], object] = {}
        self._observe = metrics.LATENCY.observe

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        self._observe(time.perf_counter() - start)
        key = (request.method or "GET", response.status_code)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metrics.REQUESTS.labels(method=key[0], status=str(key[1]))
        child.inc()  # type: ignore[attr-defined]
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_conflict(exception):
            return json_error(409, "conflict_retry", CONFLICT_MESSAGE)
        if isinstance(exception, OperationalError | InterfaceError) or (
            isinstance(exception, DatabaseError) and "connection" in str(exception).lower()
        ):
            log.error("database unavailable: %s", exception)
            response = json_error(
                503, "database_unavailable", "The database is unavailable; try again shortly."
            )
            response["Retry-After"] = "5"
            return response
        return None


class BodySizeLimitMiddleware:
    """Refuses bodies over the configured limit with 413 before anything reads them."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = request.META.get("CONTENT_LENGTH")
        if length:
            try:
                size = int(length)
            except ValueError:
                return json_error(400, "bad_request", "Content-Length is not a number.")
            limit = (
                settings.MAX_UPLOAD_BYTES
                if request.path.startswith(LARGE_BODY_PREFIXES)
                else settings.MAX_REQUEST_BODY_BYTES
            )
            if size > limit:
                return json_error(
                    413,
                    "payload_too_large",
                    f"The request body is {size} bytes; the limit is {limit} bytes.",
                    {"limit": limit, "size": size},
                )
        return self.get_response(request)


class ApiNotFoundMiddleware:
    """Everything under /api/ answers JSON, including URLs that match no route."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code in (404, 405)
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            if response.status_code == 405:
                return json_error(405, "method_not_allowed", f"{request.method} is not allowed here.")
            return json_error(404, "not_found", f"No API endpoint at {request.path}.")
        return response
