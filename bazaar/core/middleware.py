"""Project-wide middleware: metrics, request-body limits, JSON 404s under /api/, fail-fast 503 on DB outage."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from bazaar.core import metrics
from bazaar.core.http import json_error

log = logging.getLogger("bazaar.http")

Handler = Callable[[HttpRequest], HttpResponse]

#: Paths that accept large uploads (CSV imports: MAX_UPLOAD_BYTES) and pages with a photo upload (a phone photo is
#: bigger than MAX_REQUEST_BODY_BYTES: IMAGE_UPLOAD_MAX_BYTES plus room for the form's other fields). The apps
#: register their own (``allow_uploads``/``allow_images`` from ``AppConfig.ready``): core names no app's URL.
LARGE_BODY_PREFIXES: tuple[str, ...] = ()
IMAGE_UPLOAD_PREFIXES: tuple[str, ...] = ()
IMAGE_FORM_ROOM = 64 * 1024


def allow_uploads(*prefixes: str) -> None:
    """Let requests under these path prefixes carry a body up to MAX_UPLOAD_BYTES (file imports)."""
    global LARGE_BODY_PREFIXES
    LARGE_BODY_PREFIXES = tuple(dict.fromkeys((*LARGE_BODY_PREFIXES, *prefixes)))


def allow_images(*prefixes: str) -> None:
    """Let forms under these path prefixes carry a photo up to IMAGE_UPLOAD_MAX_BYTES (and answer a bigger one with a
    page in words)."""
    global IMAGE_UPLOAD_PREFIXES
    IMAGE_UPLOAD_PREFIXES = tuple(dict.fromkeys((*IMAGE_UPLOAD_PREFIXES, *prefixes)))


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


class SecurityHeadersMiddleware:
    """Outermost: every response Django sends — pages, the API, and the error pages other middleware return early
    (400 bad host, 413 body too large, 503) — carries the Content-Security-Policy and the security headers, and a
    page for a signed-in session is never stored by a shared or browser cache (``private, no-store``).

    The CSP allows scripts, styles and fonts from this origin only: no page has an inline script, style or event
    handler (site.js adds the enhancements). Responses of the WSGI fast path get the same policy from
    ``bazaar.config.wsgi``."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        csp = settings.CONTENT_SECURITY_POLICY
        if csp and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = csp
        response.headers.setdefault("X-Frame-Options", settings.X_FRAME_OPTIONS)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if settings.SECURE_REFERRER_POLICY:
            response.headers.setdefault("Referrer-Policy", str(settings.SECURE_REFERRER_POLICY))
        if settings.SESSION_COOKIE_NAME in request.COOKIES and _signed_in(request):
            response["Cache-Control"] = "private, no-store"
            response.headers.setdefault("Vary", "Cookie")
        return response


def _signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)  # unset when an earlier middleware answered (static files, 413)
    return bool(user is not None and user.is_authenticated)


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
            if request.path.startswith(IMAGE_UPLOAD_PREFIXES):
                limit = settings.IMAGE_UPLOAD_MAX_BYTES + IMAGE_FORM_ROOM
            if size > limit:
                if not request.path.startswith("/api/"):
                    # A browser's form (an import, a product photo): a page in words, not a JSON body.
                    image = request.path.startswith(IMAGE_UPLOAD_PREFIXES)
                    context = {
                        "size": size,
                        "limit": settings.IMAGE_UPLOAD_MAX_BYTES if image else limit,
                        "image": image,
                        "back": request.path,
                    }
                    return render(request, "too_large.html", context, status=413)
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
                allowed = json_error(405, "method_not_allowed", f"{request.method} is not allowed here.")
                if response.has_header("Allow"):  # RFC 9110: a 405 names the methods the resource allows
                    allowed["Allow"] = response["Allow"]
                return allowed
            return json_error(404, "not_found", f"No API endpoint at {request.path}.")
        return response


def with_csp(app: Callable[..., Any]) -> Callable[..., Any]:
    """A WSGI wrapper: responses without a Content-Security-Policy (the fast path's) get the configured one."""
    csp = settings.CONTENT_SECURITY_POLICY
    if not csp:
        return app
    header = ("Content-Security-Policy", csp)

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if not any(name.lower() == "content-security-policy" for name, _ in headers):
                headers = [*headers, header]
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped
