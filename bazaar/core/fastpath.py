"""A WSGI-level fast path for anonymous cached pages: stored bytes in one cache round trip, no Django request.

Django's request cycle (request object, ten middleware, URL resolving, response object) costs more than the
cache round trip itself. For public pages that are identical for every anonymous visitor, the view stores ready
bytes with core.cache; this layer looks them up *before* Django and answers a hit directly, with the same
headers the view would send (ETag, Cache-Control, security headers) and 304 on a matching If-None-Match.

Anything unusual goes to Django unchanged: other methods, a session cookie (a signed-in user may see a
different page), a host Django would refuse, plain http when HTTPS is required, a miss, or a cache outage.
Apps register routes in their ``AppConfig.ready()``:

    fastpath.register(r"^/s/(?P<slug>[-a-z0-9]+)/$", lambda m, qs: (Scope("storefront", "page", m["slug"]), "html"),
                      content_type="text/html; charset=utf-8")
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http.request import split_domain_port, validate_host

from bazaar.core import cache, metrics
from bazaar.core.cache import Scope
from bazaar.core.http import is_json_content_type

Resolver = Callable[[re.Match[str], str], "tuple[Scope, str] | None"]
#: A custom handler gets the match and the WSGI environ and returns (status, headers, body) or None (→ Django).
Handler = Callable[[re.Match[str], dict[str, Any]], "tuple[str, list[tuple[str, str]], bytes] | None"]
#: A write handler also gets the request body (already read; at most MAX_REQUEST_BODY_BYTES).
WriteHandler = Callable[
    [re.Match[str], dict[str, Any], bytes], "tuple[str, list[tuple[str, str]], bytes] | None"
]


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    resolve: Resolver
    content_type: str
    cache_control: str


_routes: list[Route] = []
_handlers: list[tuple[re.Pattern[str], Handler]] = []
_writes: dict[str, list[tuple[re.Pattern[str], WriteHandler]]] = {}


def register(
    pattern: str,
    resolve: Resolver,
    *,
    content_type: str,
    cache_control: str = "public, max-age=0, must-revalidate",
) -> None:
    """Serve hits for paths matching ``pattern``. ``resolve(match, query_string)`` names the entry, or None."""
    _routes.append(Route(re.compile(pattern), resolve, content_type, cache_control))


def register_handler(pattern: str, handler: Handler) -> None:
    """A fully custom fast-path handler for GETs matching ``pattern`` (e.g. API-key checked JSON reads).

    The handler must answer only what Django would answer identically (``tests/test_fast_parity.py``) and return
    None for everything else. A hit costs one cache round trip (``cache.lookup``); a handler that builds a miss
    itself queries inside :func:`database` and stores with ``cache.ready_to_fill``/``cache.fill``. Security
    headers are added for it.
    """
    _handlers.append((re.compile(pattern), handler))


def register_write(method: str, pattern: str, handler: WriteHandler) -> None:
    """A fast-path handler for ``method`` (PUT, POST, ...) requests matching ``pattern`` (e.g. an API write).

    It runs inside :func:`database` (database connections are kept up as Django's request signals keep them for
    a view) and must call the same service a view would, answer exactly what Django would
    answer (body, status, headers apart from the security headers added here), and return None for everything
    it does not handle — the request then goes to Django unchanged, body included. Only requests with a
    ``Content-Length`` within ``MAX_REQUEST_BODY_BYTES`` (or none: an empty body) reach it; chunked bodies and
    larger ones get Django's answer (413/400).
    """
    _writes.setdefault(method.upper(), []).append((re.compile(pattern), handler))


def json_answer(status: int, data: Any) -> tuple[str, list[tuple[str, str]], bytes]:
    """A write handler's JSON answer, rendered as the API renders it (NinjaJSONEncoder, Ninja's content type)."""
    from ninja.responses import NinjaJSONEncoder

    out = json.dumps(data, cls=NinjaJSONEncoder).encode()
    line = f"{status} {HTTPStatus(status).phrase}"
    return line, [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(out)))], out


#: Django's receivers of the request signals, which :func:`database` stands in for (``tests/system/test_fastpath_upkeep.py``
#: fails if another is connected: a fast path would then have to run it too).
DJANGO_REQUEST_RECEIVERS = {
    "request_started": {"django.db.reset_queries", "django.db.close_old_connections"},
    "request_finished": {
        "django.db.close_old_connections",
        "django.core.cache.close_caches",
        "django.core.handlers.base.reset_urlconf",
    },
}


@contextlib.contextmanager
def database(environ: dict[str, Any]) -> Iterator[None]:
    """Around a fast-path handler that uses the database: the connection upkeep Django's request signals do for a
    view, for the one connection the fast paths use (``default``): before and after, a connection past
    ``CONN_MAX_AGE`` or left unusable by an error is closed (``close_old_connections``). The signals' other
    receivers have nothing to do here: ``reset_queries`` empties the DEBUG query log (a bounded deque),
    ``close_caches`` closes Django's cache backends (the fast paths use ``core.cache``'s), ``reset_urlconf``
    undoes a per-request URLconf (none is set). Sending the signals cost 12-14 % of a KV miss's or PUT's CPU
    (``bench/kv_profile.py``)."""
    conn = connections[DEFAULT_DB_ALIAS]
    # Inside a transaction only a test calls a request handler (each test runs in one): closing would break it,
    # which is why Django's test client disconnects close_old_connections during its requests.
    upkeep = not conn.in_atomic_block
    if upkeep:
        conn.close_if_unusable_or_obsolete()
    try:
        yield
    finally:
        if upkeep:
            conn.close_if_unusable_or_obsolete()


def routes() -> list[Route]:
    return list(_routes)


class FastPath:
    """WSGI middleware around Django's application."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self._ok = metrics.REQUESTS.labels(method="GET", status="200")
        self._not_modified = metrics.REQUESTS.labels(method="GET", status="304")
        self._observe = metrics.LATENCY.observe
        self._hosts: list[str] | None = None
        self._security: list[tuple[str, str]] | None = None

    def _security_headers(self) -> list[tuple[str, str]]:
        if self._security is None:
            headers = [("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", settings.X_FRAME_OPTIONS)]
            if settings.SECURE_REFERRER_POLICY:
                headers.append(("Referrer-Policy", str(settings.SECURE_REFERRER_POLICY)))
            if getattr(settings, "SECURE_CROSS_ORIGIN_OPENER_POLICY", None):
                headers.append(
                    ("Cross-Origin-Opener-Policy", str(settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
                )
            if getattr(settings, "SECURE_HSTS_SECONDS", 0):
                value = f"max-age={settings.SECURE_HSTS_SECONDS}"
                if getattr(settings, "SECURE_HSTS_INCLUDE_SUBDOMAINS", False):
                    value += "; includeSubDomains"
                if getattr(settings, "SECURE_HSTS_PRELOAD", False):
                    value += "; preload"
                headers.append(("Strict-Transport-Security", value))
            self._security = headers
        return self._security

    def _host_ok(self, environ: dict[str, Any]) -> bool:
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        if self._hosts is None:
            self._hosts = list(settings.ALLOWED_HOSTS) or (
                ["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else []
            )
        domain, _port = split_domain_port(host)
        return bool(domain) and validate_host(domain, self._hosts)

    def _secure_ok(self, environ: dict[str, Any]) -> bool:
        if not getattr(settings, "SECURE_SSL_REDIRECT", False):
            return True
        if environ.get("wsgi.url_scheme") == "https":
            return True
        header: tuple[str, str] | None = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
        return header is not None and environ.get(header[0]) == header[1]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method == "GET":
            if _routes or _handlers:
                start = time.perf_counter()
                served = self._try(environ, start_response)
                if served is not None:
                    self._observe(time.perf_counter() - start)
                    return served
        elif method in _writes:
            start = time.perf_counter()
            served = self._try_write(method, environ, start_response)
            if served is not None:
                self._observe(time.perf_counter() - start)
                return served
        return self.app(environ, start_response)

    def _try_write(
        self, method: str, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes] | None:
        path = environ.get("PATH_INFO", "")
        for pattern, handler in _writes[method]:
            m = pattern.match(path)
            if m is None:
                continue
            try:
                length = int(environ.get("CONTENT_LENGTH") or "0")
            except ValueError:
                return None
            if environ.get("HTTP_TRANSFER_ENCODING") or not 0 <= length <= settings.MAX_REQUEST_BODY_BYTES:
                return None
            if not self._host_ok(environ) or not self._secure_ok(environ):
                return None
            if length and not is_json_content_type(environ.get("CONTENT_TYPE", "")):
                return None  # Django answers 415 unsupported_media_type
            body = environ["wsgi.input"].read(length) if length else b""
            # From here on Django must see the body we consumed if we pass the request on.
            environ["wsgi.input"] = io.BytesIO(body)
            if len(body) != length:
                return None
            with database(environ):
                answer = handler(m, environ, body)
            if answer is None:
                environ["wsgi.input"].seek(0)
                return None
            status, headers, out = answer
            start_response(status, [*headers, *self._security_headers()])
            metrics.REQUESTS.labels(method=method, status=status[:3]).inc()
            return [out]
        return None

    def _try(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
        path = environ.get("PATH_INFO", "")
        for pattern, handler in _handlers:
            m = pattern.match(path)
            if m is None:
                continue
            if not self._host_ok(environ) or not self._secure_ok(environ):
                return None
            answer = handler(m, environ)
            if answer is None:
                return None
            status, headers, body = answer
            start_response(status, [*headers, *self._security_headers()])
            (self._ok if status.startswith("200") else self._not_modified).inc()
            return [body]
        for route in _routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            if settings.SESSION_COOKIE_NAME + "=" in environ.get("HTTP_COOKIE", ""):
                return None
            if not self._host_ok(environ) or not self._secure_ok(environ):
                return None
            named = route.resolve(match, environ.get("QUERY_STRING", ""))
            if named is None:
                return None
            found = cache.peek(*named)
            if found is None:
                return None
            headers = [
                ("ETag", found.etag),
                ("Cache-Control", route.cache_control),
                ("Vary", "Cookie"),
                ("X-Cache", "hit"),
                *self._security_headers(),
            ]
            inm = environ.get("HTTP_IF_NONE_MATCH")
            if inm and (
                inm.strip() == "*" or found.etag in [c.strip().removeprefix("W/") for c in inm.split(",")]
            ):
                start_response("304 Not Modified", headers)
                self._not_modified.inc()
                return [b""]
            headers.append(("Content-Type", route.content_type))
            headers.append(("Content-Length", str(len(found.body))))
            start_response("200 OK", headers)
            self._ok.inc()
            return [found.body]
        return None
