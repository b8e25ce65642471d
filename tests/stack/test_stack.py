"""Tests against the scaled-out topology (``make stack``): nginx with its edge cache in front of two app servers,
a Celery worker and beat, PostgreSQL and Redis. Plain HTTP only; nothing here touches the database directly.

    make stack && make stack-test && make stack-down

``BAZAAR_STACK_URL`` is nginx (http://127.0.0.1:8080); ``BAZAAR_STACK_APPS`` the app servers behind it
(default http://127.0.0.1:8001,http://127.0.0.1:8002). Writes go through one app server and must be visible at
once through the other and through nginx — including nginx's edge cache, which keeps anonymous pages until the app
purges them after the commit.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.stack

STACK = os.environ.get("BAZAAR_STACK_URL", "").rstrip("/")
APPS = [
    u.strip().rstrip("/")
    for u in os.environ.get("BAZAAR_STACK_APPS", "http://127.0.0.1:8001,http://127.0.0.1:8002").split(",")
    if u.strip()
]
STORE = "/s/demo-shop/"


@dataclass
class Resp:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def _conn(base: str, timeout: float = 30) -> http.client.HTTPConnection:
    parts = urlsplit(base)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)


def _send(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Resp:
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=data, headers=hdrs)
    r = conn.getresponse()
    return Resp(r.status, r.read(), {k.lower(): v for k, v in r.getheaders()})


def call(
    base: str, method: str, path: str, body: Any = None, token: str | None = None, **headers: str
) -> Resp:
    conn = _conn(base)
    try:
        return _send(conn, method, path, body, token, headers)
    finally:
        conn.close()


def get(base: str, path: str, **headers: str) -> Resp:
    return call(base, "GET", path, **headers)


@pytest.fixture(scope="session")
def stack() -> str:
    assert len(APPS) >= 2, "BAZAAR_STACK_APPS must name two app servers"
    for base in [STACK, *APPS]:
        assert get(base, "/healthz").status == 200, base
    return STACK


@pytest.fixture(scope="session")
def tokens(stack: str) -> dict[str, str]:
    """API tokens of the demo users (``bazaar demo``), one login each per session."""
    logins = {
        "vendor": ("demo", "spice-market-2026"),
        "desk": ("desk", "rentals-desk-2026"),
        "admin": ("admin", "bazaar-admin-2026"),
    }
    out = {}
    for role, (username, password) in logins.items():
        r = call(
            APPS[0],
            "POST",
            "/api/accounts/tokens/login",
            {"username": username, "password": password, "name": "stack-test"},
        )
        assert r.status == 201, (role, r.status, r.text)
        out[role] = r.json()["token"]
    return out


@contextmanager
def _restored(path: str, field_name: str, original: Any, token: str) -> Iterator[None]:
    """Put demo data back after the test changed it (``bazaar demo`` on the same database must still work)."""
    try:
        yield
    finally:
        r = call(APPS[0], "PATCH", path, {field_name: original}, token=token)
        assert r.status == 200, r.text


def _first_product(token: str) -> dict[str, Any]:
    items: list[dict[str, Any]] = call(
        APPS[0], "GET", "/api/storefront/products?limit=1", token=token
    ).json()["items"]
    return items[0]


def _seen_everywhere(paths: list[str], needle: str, writer: int) -> None:
    """Right after a write through APPS[writer]: the other app server and nginx show ``needle`` on every path."""
    other = APPS[1 - writer]
    for base in (other, STACK, APPS[writer]):
        for path in paths:
            r = get(base, path)
            assert r.status == 200, (base, path, r.status)
            assert needle in r.text, (
                f"{base}{path} does not show {needle!r} (X-Cache-Status={r.header('x-cache-status')})"
            )


def _warm(paths: list[str]) -> None:
    """Fill every cache on the way: both app servers' entries and the edge's copy (a second GET is an edge HIT)."""
    for base in [*APPS, STACK, STACK]:
        for path in paths:
            assert get(base, path).status == 200, (base, path)


def test_store_page_write_through_one_server_is_seen_through_the_other_and_the_edge(
    tokens: dict[str, str],
) -> None:
    token = tokens["vendor"]
    product = _first_product(token)
    path = f"/api/storefront/products/{product['id']}"
    with _restored(path, "name", product["name"], token):
        for writer in (0, 1):
            _warm([STORE])
            assert get(STACK, STORE).header("x-cache-status") == "HIT"
            name = f"0 Stack tea {uuid.uuid4().hex[:10]}"  # sorts first: the store shows 24 by name
            r = call(APPS[writer], "PATCH", path, {"name": name}, token=token)
            assert r.status == 200, r.text
            _seen_everywhere([STORE], name, writer)


def test_title_pages_write_through_one_server_are_seen_through_the_other_and_the_edge(
    tokens: dict[str, str],
) -> None:
    token = tokens["desk"]
    title = get(APPS[0], "/api/rentals/titles").json()["items"][0]
    title_id = title["id"]
    pages = [
        "/rentals/",
        "/api/rentals/titles",
        f"/rentals/titles/{title_id}/",
        f"/api/rentals/titles/{title_id}",
    ]
    with _restored(f"/api/rentals/titles/{title_id}", "author", title["author"], token):
        for writer in (0, 1):
            _warm(pages)
            author = f"Stack Author {uuid.uuid4().hex[:10]}"
            r = call(
                APPS[writer], "PATCH", f"/api/rentals/titles/{title_id}", {"author": author}, token=token
            )
            assert r.status == 200, r.text
            _seen_everywhere(pages, author, writer)


def test_trainer_list_write_through_one_server_is_seen_through_the_other_and_the_edge(
    tokens: dict[str, str],
) -> None:
    token = tokens["admin"]
    path = "/api/trading/trainers/tr0001"
    with _restored(path, "first_name", get(APPS[0], path).json()["first_name"], token):
        for writer in (1, 0):
            _warm(["/trading/"])
            first = f"Stacky{uuid.uuid4().hex[:8]}"
            r = call(APPS[writer], "PATCH", path, {"first_name": first}, token=token)
            assert r.status == 200, r.text
            _seen_everywhere(["/trading/"], first, writer)


def test_kv_get_write_through_one_server_is_seen_through_the_other(tokens: dict[str, str]) -> None:
    slug = f"stack-{uuid.uuid4().hex[:8]}"
    assert call(APPS[0], "POST", "/api/kv/tenants", {"slug": slug}, token=tokens["admin"]).status == 201
    created = call(APPS[1], "POST", f"/api/kv/tenants/{slug}/keys", {"name": "stack"}, token=tokens["admin"])
    assert created.status == 201, created.text
    key = created.json()["secret"]
    path = "/api/kv/keys/stack/greeting"
    for n, writer in enumerate((0, 1, 0, 1)):
        value = {"n": n, "id": uuid.uuid4().hex}
        put = call(APPS[writer], "PUT", path, {"value": value}, token=key)
        assert put.status == 200, put.text
        for base in (APPS[1 - writer], STACK, APPS[1 - writer], APPS[writer]):
            r = call(base, "GET", path, token=key)  # the second read of each server is a cache hit
            assert r.status == 200, (base, r.text)
            assert r.json()["value"] == value, (base, r.header("x-cache"))
            assert r.header("x-cache-status") == ""  # never through the edge cache: per tenant


def test_a_task_enqueued_by_a_request_is_run_by_the_worker(tokens: dict[str, str]) -> None:
    # The app servers run without a worker of their own and the broker is real (tasks are not eager there), so
    # "done" can only come from the stack's Celery worker.
    token = tokens["desk"]
    started = call(APPS[0], "POST", "/api/rentals/exports", token=token)
    assert started.status == 202, started.text
    job_id = started.json()["id"]
    deadline = time.monotonic() + 45
    status = started.json()["status"]
    while time.monotonic() < deadline and status != "done":
        time.sleep(0.3)
        r = call(APPS[1], "GET", f"/api/rentals/exports/{job_id}", token=token)
        assert r.status == 200
        status = r.json()["status"]
        assert status != "failed", r.text
    assert status == "done"
    csv = call(STACK, "GET", f"/api/rentals/exports/{job_id}/download", token=token)
    assert csv.status == 200
    assert csv.header("content-type").startswith("text/csv")


def test_nginx_serves_static_files_with_long_cache_headers(stack: str) -> None:
    home = get(STACK, "/")
    assert home.status == 200
    assets = re.findall(r'/static/[^"\']+\.[0-9a-f]{12}\.(?:css|svg|js)', home.text)
    assert assets, "the home page links no hashed static file"
    for asset in assets[:3]:
        r = get(STACK, asset)
        assert r.status == 200, asset
        cc = r.header("cache-control")
        assert "max-age=31536000" in cc, (asset, cc)
        assert "immutable" in cc, (asset, cc)
        assert "x-cache" not in r.headers  # nginx itself, not an app server
    assert get(STACK, "/static/does-not-exist.css").status == 404


# --- the edge cache -----------------------------------------------------------------------------------------


def _quiet_hit(path: str, *, delay: float = 1.0, within: float = 20.0) -> None:
    """Wait until ``path`` is an edge HIT that lasts: the app servers send a last purge ``EDGE_PURGE_DELAY`` (1 s)
    after each write's own (core.edge), so an earlier test's write can still purge a page a test has just warmed
    (CI caught one landing in the middle of the test below). Polls until the page stayed a HIT for longer than
    that delay."""
    deadline = time.monotonic() + within
    since: float | None = None
    while time.monotonic() < deadline:
        if get(STACK, path).header("x-cache-status") == "HIT":
            since = since or time.monotonic()
            if time.monotonic() - since > delay + 0.5:
                return
        else:
            since = None
        time.sleep(0.05)
    raise AssertionError(f"{path} never stayed an edge HIT for {delay + 0.5} s")


def test_edge_caches_only_anonymous_reads_and_answers_304(stack: str) -> None:
    _warm([STORE])
    _quiet_hit(STORE)  # no purge of an earlier test's write still on its way
    hit = get(STACK, STORE)
    assert hit.header("x-cache-status") == "HIT"
    # Browsers are still told to revalidate; the ETag answers that at the edge.
    assert "max-age=0" in hit.header("cache-control")
    assert get(STACK, STORE, **{"If-None-Match": hit.header("etag")}).status == 304
    assert get(STACK, STORE, Cookie="sessionid=not-a-session").header("x-cache-status") == "BYPASS"
    assert get(STACK, STORE, Authorization="Bearer nope").header("x-cache-status") == "BYPASS"
    assert get(STACK, STORE + "?utm=x").header("x-cache-status") == "BYPASS"
    for path in ("/api/storefront/stores/demo-shop", "/healthz", "/api/kv/keys/x"):
        assert get(STACK, path).header("x-cache-status") == "", path
    # The public server never purges.
    assert call(STACK, "PURGE", STORE).status >= 400
    assert get(STACK, "/purge" + STORE).status == 404
    assert get(STACK, STORE).header("x-cache-status") == "HIT"


def test_edge_is_never_stale_for_reads_that_start_after_a_write_returned(tokens: dict[str, str]) -> None:
    """Readers hammer the store page through nginx while writes alternate between app server A and B.

    A read is stale if it started after write k's response came back and shows an older write. There must be none.
    """
    token = tokens["vendor"]
    product = _first_product(token)
    product_id = product["id"]
    run = uuid.uuid4().hex[:8]
    pattern = re.compile(rf"fresh-{run}-(\d+)")
    writes = 30
    done_at: list[float] = [0.0] * (writes + 1)  # done_at[k]: when write k's response had returned
    reads: list[tuple[float, int, str]] = []
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def reader() -> None:
        conn = _conn(STACK, timeout=10)
        mine: list[tuple[float, int, str]] = []
        try:
            while not stop.is_set():
                started = time.monotonic()
                r = _send(conn, "GET", STORE)
                if r.status != 200:
                    errors.append(f"status {r.status}")
                    continue
                m = pattern.search(r.text)
                mine.append((started, int(m.group(1)) if m else 0, r.header("x-cache-status")))
        except Exception as exc:  # reported below: a reader must not die silently
            errors.append(repr(exc))
        finally:
            conn.close()
            with lock:
                reads.extend(mine)

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for t in threads:
        t.start()
    with _restored(f"/api/storefront/products/{product_id}", "name", product["name"], token):
        _write_while_reading(writes, product_id, run, token, done_at, stop, threads)
    assert not errors, errors[:5]

    stale = []
    for started, seen, cache_status in reads:
        expected = max((k for k in range(1, writes + 1) if done_at[k] <= started), default=0)
        if seen < expected:
            stale.append((round(started - done_at[expected], 4), seen, expected, cache_status))
    hits = sum(1 for _, _, s in reads if s == "HIT")
    print(f"freshness: {len(reads)} reads ({hits} edge hits), {writes} writes, {len(stale)} stale")
    assert len(reads) > writes * 5
    assert hits > len(reads) // 4, "the edge cache did not serve: the test would prove nothing"
    assert stale == [], stale[:10]
    assert max(seen for _, seen, _ in reads) == writes


def _write_while_reading(
    writes: int,
    product_id: int,
    run: str,
    token: str,
    done_at: list[float],
    stop: threading.Event,
    readers: list[threading.Thread],
) -> None:
    """Rename the product ``writes`` times, alternating app servers; ``done_at[k]``: when write k had returned."""
    try:
        for k in range(1, writes + 1):
            time.sleep(0.05)
            r = call(
                APPS[k % 2],
                "PATCH",
                f"/api/storefront/products/{product_id}",
                {"name": f"0-fresh-{run}-{k}"},  # sorts onto the store's first page
                token=token,
            )
            done_at[k] = time.monotonic()
            assert r.status == 200, r.text
        time.sleep(0.3)
    finally:
        stop.set()
        for t in readers:
            t.join(30)


def test_watches_through_nginx_wait_on_the_watch_servers_not_app_threads(tokens: dict[str, str]) -> None:
    # The app servers (1 worker each) let KVSTORE_WATCH_MAX_WAITING (2) watchers wait per process: 4 in all.
    # 40 long-polls through nginx that all wait for the next write can only be held by the watch servers.
    slug = f"stack-watch-{uuid.uuid4().hex[:8]}"
    assert call(APPS[0], "POST", "/api/kv/tenants", {"slug": slug}, token=tokens["admin"]).status == 201
    created = call(APPS[0], "POST", f"/api/kv/tenants/{slug}/keys", {"name": "watch"}, token=tokens["admin"])
    key = created.json()["secret"]
    since = call(APPS[0], "PUT", "/api/kv/keys/w/seed", {"value": 0}, token=key).json()["revision"]
    stream = _conn(STACK)
    stream.request(
        "GET",
        f"/api/kv/watch?prefix=w/&since={since}",
        headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream"},
    )
    events = stream.getresponse()
    assert events.status == 200
    polls = [_conn(STACK, timeout=60) for _ in range(40)]
    for conn in polls:
        conn.request(
            "GET",
            f"/api/kv/watch?prefix=w/&since={since}&wait=30",
            headers={"Authorization": f"Bearer {key}"},
        )
    time.sleep(2)
    written = [
        call(APPS[n % 2], "PUT", f"/api/kv/keys/w/{n}", {"value": n}, token=key).json()["revision"]
        for n in range(2)
    ]
    for conn in polls:
        page = json.loads(conn.getresponse().read())
        assert [c["revision"] for c in page["items"]][:1] == written[:1], page
        conn.close()
    ids: list[int] = []
    while len(ids) < 2:
        line = events.fp.readline()
        if line.startswith(b"id: "):
            ids.append(int(line[4:]))
    stream.close()
    assert ids == written


# --- uploads (media) through nginx ---------------------------------------------------------------------------


class _Session:
    """A person's browser, reduced to cookies: signs in through the real login form behind nginx."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}

    def send(self, method: str, path: str, body: bytes | None = None, **headers: str) -> Resp:
        hdrs = dict(headers)
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn = _conn(self.base)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            for name, value in r.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key.strip()] = rest.split(";", 1)[0]
            return Resp(r.status, r.read(), {k.lower(): v for k, v in r.getheaders()})
        finally:
            conn.close()

    def csrf(self, path: str) -> str:
        page = self.send("GET", path)
        assert page.status == 200, (path, page.status)
        m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert m, f"{path} has no CSRF token"
        return m.group(1)

    def post(
        self, path: str, fields: dict[str, str], files: dict[str, tuple[str, str, bytes]] | None = None
    ) -> Resp:
        """A form post as a browser sends it: multipart/form-data with the page's CSRF token."""
        boundary = uuid.uuid4().hex
        parts: list[bytes] = []
        for name, value in {"csrfmiddlewaretoken": self.csrf(path), **fields}.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            )
        for name, (filename, content_type, data) in (files or {}).items():
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            )
            parts.append(head.encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.send(
            "POST",
            path,
            body,
            **{"Content-Type": f"multipart/form-data; boundary={boundary}", "Referer": self.base + path},
        )


def _photo_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (900, 600), (180, 90, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_nginx_serves_an_uploaded_photo_and_its_thumbnails_with_their_cache_headers(
    tokens: dict[str, str],
) -> None:
    """A vendor uploads a photo through the product form behind nginx; the store page (through nginx) shows its
    thumbnails, and nginx itself — not an app server — serves them from the shared media folder: a year and
    immutable for the thumbnails, a day for the original, never anything but an image."""
    vendor = _Session(STACK)
    signed_in = vendor.post("/accounts/login/", {"username": "demo", "password": "spice-market-2026"})
    assert signed_in.status == 302, signed_in.text[:500]
    assert "sessionid" in vendor.cookies
    name = f"0 Stack photo {uuid.uuid4().hex[:10]}"  # sorts onto the store's first page
    form = {"name": name, "mrp": "120", "price": "99", "stock": "7", "is_available": "on", "is_listed": "on"}
    created = vendor.post(
        "/storefront/products/new/", form, {"image": ("stack.png", "image/png", _photo_png())}
    )
    assert created.status == 302, created.text[:1000]
    products = vendor.send("GET", "/storefront/products/")
    row = re.search(
        rf'<tr data-product="{re.escape(name)}">.*?/storefront/products/(\d+)/edit/', products.text, re.S
    )
    assert row, "the new product is not on the product list"
    pk = row.group(1)
    try:
        store = get(STACK, STORE)
        assert store.status == 200
        card = store.text[store.text.index(f'data-product="{name}"') :].split("</li>")[0]
        img = re.search(r'<img class="thumb" src="([^"]+)" srcset="([^" ]+) 240w, ([^" ]+) 480w"', card)
        assert img, card
        small, large = img.group(2), img.group(3)
        assert small == img.group(1)
        assert re.fullmatch(r"/media/storefront/thumbs/[A-Za-z0-9]+-240\.jpg", small), small
        for thumb in (small, large):
            r = get(STACK, thumb)
            assert r.status == 200, (thumb, r.status)
            assert r.header("content-type") == "image/jpeg"
            assert r.header("cache-control") == "public, max-age=31536000, immutable"
            assert r.header("x-content-type-options") == "nosniff"
            assert "sandbox" in r.header("content-security-policy")
            assert r.body[:3] == b"\xff\xd8\xff"  # a JPEG
            # nginx's own file answer (ranges, ETag), not a proxied one: the app adds its security headers.
            assert r.header("accept-ranges") == "bytes"
            assert r.header("etag")
            assert "x-frame-options" not in r.headers, "proxied to an app server instead of served by nginx"
            assert "x-frame-options" in get(APPS[0], thumb).headers  # (what a proxied answer would carry)
        original = call(STACK, "GET", f"/api/storefront/products/{pk}", token=tokens["vendor"]).json()[
            "image"
        ]
        assert re.fullmatch(r"/media/storefront/products/[^/]+\.png", original), original
        r = get(STACK, original)
        assert (r.status, r.header("content-type")) == (200, "image/png")
        assert r.header("cache-control") == "public, max-age=86400"
        assert "x-frame-options" not in r.headers
        # Only images, and nothing outside the folder.
        for path in (
            "/media/storefront/products/",
            "/media/x.html",
            "/media/../deploy/stack.py",
            small + ".html",
        ):
            assert get(STACK, path).status == 404, path
    finally:
        deleted = vendor.post(f"/storefront/products/{pk}/delete/", {})
        assert deleted.status == 302, deleted.text[:500]
