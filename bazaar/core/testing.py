"""Test helpers shared by the apps' suites (imported by tests only)."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

WsgiApp = Callable[..., Iterable[bytes]]
T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, *, every: float = 0.02, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` seconds pass (AssertionError).

    Instead of a fixed ``time.sleep`` before an assertion: as fast as the condition on an idle machine, as patient
    as ``timeout`` on a loaded one."""
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true after {timeout} s: {what or predicate}")
        time.sleep(every)


def assert_refused(r: Any, status: int, code: str) -> dict[str, Any]:
    """An API error answer (a Django test response): the status, the stable code and a message in the JSON body,
    and ``WWW-Authenticate`` on a 401. Returns the body."""
    from bazaar.core.errors import WWW_AUTHENTICATE

    assert r.status_code == status, r.content
    body: dict[str, Any] = json.loads(r.content)
    assert body["code"] == code, body
    assert body["message"]
    if status == 401:
        assert r["WWW-Authenticate"] == WWW_AUTHENTICATE
    return body


def assert_page_refused(r: Any, status: int, text: str) -> None:
    """A refused page or form: the status and the reason, visible on the page."""
    html = r.content.decode()
    assert r.status_code == status, html
    assert text in html, html


class FrozenClock:
    """``django.utils.timezone.now`` held still (every caller reads ``timezone.now()`` through the module), moved
    only by ``advance``: a test asserts the exact TTL left instead of "59 or 60, depending on the second"."""

    def __init__(self, monkeypatch: Any) -> None:
        from django.utils import timezone

        self.now = timezone.now()
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


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


@contextlib.contextmanager
def chromium_browser() -> Iterator[Any]:
    """A headless Chromium (Playwright) for one test, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# Screenshots kept in docs/screenshots: rewritten only when the page visibly changed (demo dates and order numbers
# move on every run; a file rewritten for them is repository churn, not documentation).
SHOT_CHANGE = 0.004  # the share of pixels that must differ
SHOT_MAX_HEIGHT = 1600  # long lists are cut: the first screens show the page, the rest is repository weight


def _shot_changed(old: Any, new: Any) -> bool:
    from PIL import ImageChops

    if old.size != new.size:
        return True
    diff = ImageChops.difference(old, new).convert("L").point(lambda v: 255 if v > 24 else 0)
    return bool(diff.histogram()[255] / (new.size[0] * new.size[1]) > SHOT_CHANGE)


def save_screenshot(page: Any, path: Any, *, full_page: bool = True, width: int = 1100) -> bool:
    """Save a Playwright page as a 64-colour PNG (a third of the bytes, text stays crisp) unless the stored file
    still shows the same page. Returns whether the file was written.

    Only when asked (``make screenshots`` sets ``BAZAAR_SCREENSHOTS=1``): a test run never modifies tracked files
    (CI fails when the tree is dirty after the suite)."""
    import os
    from pathlib import Path

    if os.environ.get("BAZAAR_SCREENSHOTS") != "1":
        return False

    from PIL import Image

    path = Path(path)
    height = page.evaluate("document.documentElement.scrollHeight") if full_page else 0
    clip = {"x": 0, "y": 0, "width": width, "height": SHOT_MAX_HEIGHT} if height > SHOT_MAX_HEIGHT else None
    png = page.screenshot(full_page=full_page, clip=clip, animations="disabled", caret="hide")
    new = Image.open(io.BytesIO(png)).convert("RGB")
    if path.exists():
        with Image.open(path) as stored:
            if not _shot_changed(stored.convert("RGB"), new):
                return False
    path.parent.mkdir(parents=True, exist_ok=True)
    new.quantize(colors=64, method=Image.Quantize.FASTOCTREE).save(path, "PNG")
    return True


# axe-core (the copy bundled by axe-playwright-python) run inside the page: the accessibility check every browser
# walk makes. Playwright's evaluate goes through DevTools, so the page's Content-Security-Policy does not block it.
AXE_BLOCKING = ("serious", "critical")


def axe_violations(page: Any, *, impacts: tuple[str, ...] = AXE_BLOCKING) -> list[dict[str, Any]]:
    """The axe-core violations on the page as it is now, of the given impacts (serious and critical by default),
    each as ``{"id", "impact", "help", "nodes": [selector, ...]}``."""
    from importlib.resources import files

    source = (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(source)
    found = page.evaluate(
        "async () => (await window.axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [v for v in found if v["impact"] in impacts]


def assert_page_fits(page: Any, *, width: int = 390, axe: bool = True) -> None:
    """The checks every page of a browser walk passes: no horizontal scrolling at ``width`` px and (unless
    ``axe=False``) no serious or critical axe-core violation. The message names the page and what failed."""
    # After a navigating click the old document may already be gone and the new one not yet parsed
    # (documentElement is null): wait for the page's load state first (at once when it is loaded).
    page.wait_for_load_state()
    url = page.url
    scroll = page.evaluate("() => document.documentElement.scrollWidth")
    if scroll > width:
        wide = page.evaluate(
            "w => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w)"
            ".slice(-6).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +"
            " (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '') +"
            " ' ends at ' + Math.round(e.getBoundingClientRect().right) + 'px')",
            width,
        )
        raise AssertionError(f"{url} scrolls sideways: scrollWidth {scroll} > {width}; too wide: {wide}")
    if axe:
        bad = axe_violations(page)
        assert not bad, f"{url} has axe-core violations: " + "; ".join(
            f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(v['nodes'][:3])}" for v in bad
        )
