"""Abuse and bad input, end to end: login throttling, CSRF on every form, upload limits, hostile JSON bodies.

What the apps' own suites already test is not repeated here (one throttle per login form, one malformed body on
one endpoint, the trading import's declared-size check). These tests go through the real WSGI application —
the fast path in front of Django, every middleware — or, for the HTML forms, through Django's test client with
CSRF checks on, and they sweep *every* form and every JSON operation, so a new one is covered without a new test.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import resolve

from bazaar.accounts.models import ApiToken
from bazaar.core.testing import WsgiApp, wsgi_call
from tests.contract.matrix_world import (
    PASSWORD,
    USERS,
    VENDOR_A,
    World,
    code_of,
    rolled_back,
    snapshot,
    world_fixture,  # noqa: F401  (the ``world`` fixture)
)
from tests.contract.test_access_matrix import API, PAGES, Row, _path

pytestmark = pytest.mark.django_db


@pytest.fixture
def app() -> WsgiApp:
    """The production WSGI callable (fast path + Django), run inside the test's transaction.

    Django's handler closes "obsolete" connections at the start and end of every request, which would close the
    test transaction; like Django's test client, each call runs with that signal receiver disconnected (and
    closes the response, as a WSGI server does, so ``request_finished`` fires).
    """
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from bazaar.config.wsgi import application

    def call(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            result = application(environ, start_response)
            try:
                return list(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)

    return call


class Browser:
    """Cookies and a client address over ``wsgi_call``: what a browser (or a script) sends to the server."""

    def __init__(self, app: WsgiApp, ip: str) -> None:
        self.app = app
        self.ip = ip
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[str] = []

    def call(
        self, method: str, path: str, body: bytes | str = b"", content_type: str = "", **extra: Any
    ) -> tuple[int, dict[str, str], bytes]:
        raw: list[tuple[str, str]] = []

        def capture(environ: dict[str, Any], start_response: Any) -> Any:
            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                raw.extend(headers)
                return start_response(status, headers, exc_info)

            return self.app(environ, start)

        environ: dict[str, Any] = {"REMOTE_ADDR": self.ip, **extra}
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if content_type:
            environ["CONTENT_TYPE"] = content_type
        status, headers, out = wsgi_call(capture, path, method=method, body=body, **environ)
        self.set_cookies = [v.strip() for k, v in raw if k.lower() == "set-cookie"]
        for cookie in self.set_cookies:
            name, _, rest = cookie.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return int(status.split()[0]), headers, out

    def login_page(self, username: str, password: str) -> tuple[int, bytes]:
        """GET the login form, then POST it with its CSRF token, as a browser does."""
        _, _, page = self.call("GET", "/accounts/login/")
        token = _csrf_field(page)
        form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
        status, _, out = self.call(
            "POST", "/accounts/login/", form, content_type="application/x-www-form-urlencoded"
        )
        return status, out

    def login_api(self, username: str, password: str) -> tuple[int, dict[str, str], Any]:
        body = json.dumps({"username": username, "password": password})
        status, headers, out = self.call(
            "POST", "/api/accounts/tokens/login", body, content_type="application/json"
        )
        return status, headers, json.loads(out)


def _csrf_field(page: bytes) -> str:
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, "the form carries no CSRF token"
    return match.group(1).decode()


# --- login throttling -------------------------------------------------------------------------------------------


def test_failed_logins_on_the_page_and_the_api_share_one_throttle_per_account(
    app: WsgiApp, make_user: Any, settings: Any
) -> None:
    settings.LOGIN_THROTTLE_PER_ACCOUNT = 3
    settings.LOGIN_THROTTLE_PER_IP = 100
    make_user("alice")
    make_user("bob")
    browser = Browser(app, "198.51.100.7")
    assert browser.login_page("alice", "wrong")[0] == 400
    assert browser.login_page("ALICE", "wrong")[0] == 400  # the same account, whatever the case
    status, _, body = browser.login_api("alice", "wrong")
    assert (status, body["code"]) == (401, "invalid_credentials")

    # The right password is refused now, on both doors, and opens nothing.
    status, page = browser.login_page("alice", PASSWORD)
    assert status == 429
    assert b"Too many failed logins for this account" in page
    assert not any(c.startswith(django_settings.SESSION_COOKIE_NAME + "=") for c in browser.set_cookies)
    status, headers, body = browser.login_api("alice", PASSWORD)
    assert (status, body["code"], headers.get("Retry-After")) == (429, "login_throttled", "60")
    assert Session.objects.count() == 0
    assert ApiToken.objects.count() == 0

    # Another account from the same address is not affected: the throttle is per account.
    assert browser.login_page("bob", PASSWORD)[0] == 302
    assert any(c.startswith(django_settings.SESSION_COOKIE_NAME + "=") for c in browser.set_cookies)
    assert Session.objects.count() == 1


def test_failed_logins_throttle_the_address_not_the_others(
    app: WsgiApp, make_user: Any, settings: Any
) -> None:
    settings.LOGIN_THROTTLE_PER_ACCOUNT = 100
    settings.LOGIN_THROTTLE_PER_IP = 3
    make_user("alice")
    attacker = Browser(app, "203.0.113.66")
    for i in range(3):  # spraying many accounts from one address
        assert attacker.login_page(f"user{i}", "guess")[0] == 400
    assert attacker.login_page("alice", PASSWORD)[0] == 429
    status, _, body = attacker.login_api("alice", PASSWORD)
    assert (status, body["code"]) == (429, "login_throttled")
    assert Session.objects.count() == 0
    assert ApiToken.objects.count() == 0

    neighbour = Browser(app, "203.0.113.67")
    assert neighbour.login_page("alice", PASSWORD)[0] == 302
    status, _, body = neighbour.login_api("alice", PASSWORD)
    assert status == 201
    assert body["token"].startswith("bzr_")


# --- CSRF on every HTML form ------------------------------------------------------------------------------------

#: The public order form is served as cached bytes, identical for every visitor, so it carries no token; the view
#: is ``csrf_exempt`` by design (an anonymous order with an idempotency key; docs/storefront.md).
CSRF_EXEMPT = {
    "storefront:store_order",
    "storefront:cart",
}  # the cart: the visitor's own cookie, grants nothing

#: Every form Bazaar renders; collecting fewer means a page lost a form (or the crawl lost a page).
FORMS = {
    "accounts:login",
    "accounts:password_reset",
    "accounts:signup",
    "accounts:logout",
    "accounts:tokens",
    "accounts:token-revoke",
    "storefront:signup",
    "storefront:shop",
    "storefront:product_new",
    "storefront:product_edit",
    "storefront:product_toggle",
    "storefront:product_delete",
    "storefront:order_status",
    "storefront:order_payment",
    "storefront:cart",  # the store's "Add to cart" (the checkout form appears on the cart page once it has items)
}

FORM_RE = re.compile(rb"<form\b([^>]*)>", re.IGNORECASE)


def _post_forms(page: bytes, url: str) -> set[str]:
    """The action URLs of the page's POST forms (an empty action posts back to the page)."""
    actions = set()
    for attrs in FORM_RE.findall(page):
        if not re.search(rb'method="post"', attrs, re.IGNORECASE):
            continue
        action = re.search(rb'action="([^"]*)"', attrs)
        actions.add(html.unescape(action.group(1).decode()) if action and action.group(1) else url)
    return actions


def _crawl(world: World) -> dict[str, tuple[str, str | None]]:
    """Every POST form on every page, seen by vendor A and by an anonymous visitor: action -> (route, who)."""
    found: dict[str, tuple[str, str | None]] = {}
    for who in (VENDOR_A, None):
        client = Client()
        if who:
            client.force_login(world.users[who])
        for row in PAGES:
            if row.method != "GET":
                continue
            url = _path(row, world)
            r = client.get(url)
            if r.status_code != 200 or not r["Content-Type"].startswith("text/html"):
                continue
            for action in _post_forms(r.content, url):
                found.setdefault(action, (str(resolve(action.split("?")[0]).view_name), who))
    return found


def test_every_html_form_refuses_a_post_without_its_csrf_token(world: World) -> None:
    forms = _crawl(world)
    assert {route for route, _ in forms.values()} == FORMS
    strict = Client(enforce_csrf_checks=True)
    problems = []
    for action, (route, who) in sorted(forms.items()):
        strict.cookies.clear()
        if who:
            strict.force_login(world.users[who])
        # A csrftoken cookie, as any visitor has: only the token in the form is missing.
        strict.get("/accounts/login/")
        token = strict.cookies["csrftoken"].value
        with rolled_back():
            r = strict.post(action, {"name": "x", "status": "cancelled", "payment_status": "paid"})
            if route in CSRF_EXEMPT:
                if r.status_code == 403:
                    problems.append(f"{action}: the exempt public order form refused a post")
                continue
            if r.status_code != 403 or b"CSRF" not in r.content:
                problems.append(f"{action} ({route}): {r.status_code} without a CSRF token")
            if snapshot() != world.baseline:
                problems.append(f"{action} ({route}): refused, but the database changed")
        with rolled_back():  # the same post with the token passes the check: the 403 above was CSRF
            r = strict.post(action, {"csrfmiddlewaretoken": token, "name": "x"})
            if r.status_code == 403:
                problems.append(f"{action} ({route}): 403 even with the CSRF token")
    assert not problems, "\n".join(problems)


def _session_auth(op: dict[str, Any]) -> bool:
    return any("session" in s for s in op.get("security", []))


def test_session_authenticated_api_writes_need_the_csrf_header(world: World, client: Client) -> None:
    """A signed-in browser's cookie alone must not write through the API: every write needs X-CSRFToken."""
    schema = client.get("/api/openapi.json").json()
    rows = {(r.method, r.path): r for r in API}
    writes = [
        rows[(m.upper(), p)]
        for p, ops in schema["paths"].items()
        for m, op in ops.items()
        if m != "get" and _session_auth(op)
    ]
    assert len(writes) > 30
    browser = Client(enforce_csrf_checks=True)
    problems = []
    for row in writes:
        who = next(p for p in USERS if row.expect[p].kind in ("ok", "own"))
        browser.cookies.clear()
        browser.force_login(world.users[who])
        browser.get("/accounts/login/")  # the csrftoken cookie a browser holds
        data = row.body(world.ids) if callable(row.body) else row.body
        for header in ({}, {"HTTP_X_CSRFTOKEN": browser.cookies["csrftoken"].value}):
            kwargs: dict[str, Any] = {**header}
            if row.form == "multipart":
                kwargs["data"] = {
                    k: SimpleUploadedFile("f.csv", v, "text/csv") for k, v in (data or {}).items()
                }
            elif data is not None:
                kwargs.update(data=json.dumps(data), content_type="application/json")
            with rolled_back():
                r = getattr(browser, row.method.lower())(_path(row, world), **kwargs)
                code = code_of(r)
                where = f"{row.method} {row.path} as {who}"
                if header:  # with the header the same session may write: the refusal was the CSRF check
                    if r.status_code == 403:
                        problems.append(f"{where}: 403 {code} even with X-CSRFToken")
                    continue
                if (r.status_code, code) != (403, "csrf_failed"):
                    problems.append(f"{where}: {r.status_code} {code} without X-CSRFToken")
                if snapshot() != world.baseline:
                    problems.append(f"{where}: refused, but the database changed")
    assert not problems, "\n".join(problems)


# --- upload limits ----------------------------------------------------------------------------------------------


def _kv(world: World) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {world.secrets['kv_a']}"}


def _ndjson(count: int, size: int = 40) -> str:
    return "".join(json.dumps({"key": f"imp/{i:06d}", "value": "v" * size}) + "\n" for i in range(count))


def test_kv_import_may_be_larger_than_an_ordinary_request(app: WsgiApp, world: World, settings: Any) -> None:
    """Imports have their own limit (MAX_UPLOAD_BYTES), above the one for ordinary bodies (and Django's own)."""
    from bazaar.kvstore.models import Entry

    settings.MAX_REQUEST_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    settings.MAX_UPLOAD_BYTES = 64 * 1024
    body = _ndjson(200)
    assert 4096 < len(body) < 64 * 1024
    status, _, out = Browser(app, "192.0.2.1").call(
        "POST", "/api/kv/import", body, content_type="application/x-ndjson", **_kv(world)
    )
    assert (status, json.loads(out)) == (200, {"imported": 200})
    assert Entry.objects.filter(key__startswith="imp/").count() == 200


def test_kv_import_over_the_upload_limit_is_413_and_writes_nothing(
    app: WsgiApp, world: World, settings: Any
) -> None:
    settings.MAX_UPLOAD_BYTES = 8 * 1024
    body = _ndjson(300)
    status, _, out = Browser(app, "192.0.2.1").call(
        "POST", "/api/kv/import", body, content_type="application/x-ndjson", **_kv(world)
    )
    assert (status, json.loads(out)["code"]) == (413, "payload_too_large")
    assert json.loads(out)["details"] == {"limit": 8 * 1024, "size": len(body)}
    assert snapshot() == world.baseline


@pytest.mark.parametrize(
    ("body", "code", "line"),
    [
        (b'{"key": "a", "value": 1}\n{"key": "b", "value": "\xff"}\n', "invalid_encoding", None),
        (b'{"key": "a", "value": 1}\n' + b"[" * 100_000 + b"\n", "invalid_record", 2),
        (b'{"key": "a", "value": 1}\n{"key": "b"\n', "invalid_record", 2),
    ],
    ids=["invalid-utf8", "nested-too-deep", "not-json"],
)
def test_kv_import_of_hostile_lines_is_422_and_writes_nothing(
    app: WsgiApp, world: World, body: bytes, code: str, line: int | None
) -> None:
    status, _, out = Browser(app, "192.0.2.1").call(
        "POST", "/api/kv/import", body, content_type="application/x-ndjson", **_kv(world)
    )
    error = json.loads(out)
    assert (status, error["code"]) == (422, code)
    if line is not None:
        assert error["details"]["line"] == line
    assert snapshot() == world.baseline


def test_trading_import_over_the_upload_limit_is_413_before_it_is_read(
    app: WsgiApp, world: World, settings: Any, tmp_path: Any
) -> None:
    """The body limit answers from the declared length, before Django parses (or spools) the upload."""
    settings.MAX_UPLOAD_BYTES = 16 * 1024
    boundary = "bazaar-boundary"
    rows = "".join(f"tX{i},First,Last,01-02-1999\n" for i in range(1000))
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="t.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\nid,firstName,lastName,dateOfBirth\n{rows}\r\n--{boundary}--\r\n"
    )
    status, _, out = Browser(app, "192.0.2.1").call(
        "POST",
        "/api/trading/import/trainers",
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
        HTTP_AUTHORIZATION=f"Bearer {world.secrets['staff']}",
    )
    assert (status, json.loads(out)["code"]) == (413, "payload_too_large")
    assert snapshot() == world.baseline
    assert not (tmp_path / "imports").exists()


def _png(size: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue() + b"\0" * max(0, size - buf.tell())  # trailing bytes: still a PNG to decoders


PRODUCT = {"name": "Big", "mrp": "100", "price": "90", "stock": "3", "is_listed": "on", "is_available": "on"}


@pytest.mark.parametrize(
    ("size", "status", "says"),
    [
        (
            20 * 1024,
            400,
            b"The image is 20.0\xc2\xa0KB; the largest accepted is 10.0\xc2\xa0KB.",
        ),  # the form says
        (200 * 1024, 413, b"the largest file accepted here is 10.0\xc2\xa0KB"),  # refused before it is read
    ],
)
def test_product_image_over_a_limit_is_refused_and_writes_nothing(
    world: World, settings: Any, tmp_path: Any, size: int, status: int, says: bytes
) -> None:
    settings.IMAGE_UPLOAD_MAX_BYTES = 10 * 1024
    client = Client()
    client.force_login(world.users[VENDOR_A])
    image = SimpleUploadedFile("big.png", _png(size), "image/png")
    r = client.post("/storefront/products/new/", {**PRODUCT, "image": image})
    assert r.status_code == status
    assert says in r.content
    assert snapshot() == world.baseline
    assert not (tmp_path / "storefront").exists()


# --- hostile JSON bodies on every JSON operation -----------------------------------------------------------------

#: body -> (status, code). Sent to every operation that takes a JSON body, as a caller allowed to use it.
HOSTILE: dict[str, tuple[bytes, int, str]] = {
    "truncated": (b'{"name": "x", ', 400, "malformed_json"),
    "not-utf8": (b'{"name": "\xff\xfe"}', 400, "malformed_json"),
    "nested-too-deep": (b"[" * 20_000, 400, "malformed_json"),
    "not-an-object": (b"[]", 422, "validation_error"),
    "null": (b"null", 422, "validation_error"),
    "oversized": (b'{"name": "' + b"x" * 40_000 + b'"}', 413, "payload_too_large"),
}


def _json_operations(client: Client) -> list[tuple[Row, str]]:
    schema = client.get("/api/openapi.json").json()
    rows = {(r.method, r.path): r for r in API}
    found = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            if "application/json" in op.get("requestBody", {}).get("content", {}):
                row = rows[(method.upper(), path)]
                who = next(p for p in (*USERS, "kv_a", "anon") if row.expect[p].kind in ("ok", "own"))
                found.append((row, who))
    return found


def test_hostile_json_bodies_get_a_stable_4xx_and_write_nothing(
    app: WsgiApp, world: World, client: Client, settings: Any
) -> None:
    settings.MAX_REQUEST_BODY_BYTES = 32 * 1024
    operations = _json_operations(client)
    assert len(operations) > 30
    problems = []
    for row, who in operations:
        browser = Browser(app, "192.0.2.9")
        auth = {"HTTP_AUTHORIZATION": f"Bearer {world.secrets[who]}"} if who in world.secrets else {}
        headers = {**row.headers, **auth}
        for name, (body, status, code) in HOSTILE.items():
            with rolled_back():
                got, _, out = browser.call(
                    row.method, _path(row, world), body, content_type="application/json", **headers
                )
                try:
                    got_code = json.loads(out).get("code")
                except ValueError:
                    got_code = out[:80]
                if (got, got_code) != (status, code):
                    problems.append(f"{row.method} {row.path} {name}: {got} {got_code}, want {status} {code}")
                if snapshot() != world.baseline:
                    problems.append(f"{row.method} {row.path} {name}: the database changed")
    assert not problems, "\n".join(problems)
