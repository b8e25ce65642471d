"""Test helpers shared by the apps' suites (imported by tests only)."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[..., Iterable[bytes]]


def wsgi_call(
    app: WsgiApp, path: str, *, method: str = "GET", body: bytes | str = b"", **extra: Any
) -> tuple[str, dict[str, str], bytes]:
    """Call a WSGI application directly (``extra`` overrides environ keys, e.g. ``HTTP_AUTHORIZATION``).

    Returns ``(status line, headers, body)``. The fast path sits in front of Django, so Django's test client
    cannot reach it; this can.
    """
    if isinstance(body, str):
        body = body.encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    environ.update(extra)
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"] = status
        captured["headers"] = dict(headers)

    out = b"".join(app(environ, start_response))
    return captured["status"], captured["headers"], out


wsgi_get = wsgi_call


def fast_path_only(path: str, **extra: Any) -> tuple[str, dict[str, str], bytes] | None:
    """Ask the fast path alone, with nothing behind it: the answer, or None when it would pass to Django."""
    from bazaar.core.fastpath import FastPath

    passed: list[bool] = []

    def behind(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        passed.append(True)
        start_response("599 Passed To Django", [])
        return [b""]

    answer = wsgi_call(FastPath(behind), path, **extra)
    return None if passed else answer


# Headless Chromium for the browser tests (marker ``browser``): the distribution's /usr/bin/chromium, quiet.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
