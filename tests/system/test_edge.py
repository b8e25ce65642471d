"""bazaar.core.edge: purging the nginx edge cache after commit.

Two real counterparts: a tiny HTTP server that records what the app sends (always available), and a real nginx
rendered from deploy/nginx.conf.tmpl with Debian's cache-purge module in front of a tiny upstream whose answer
and speed the test controls (skipped where nginx or the module is missing).
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from bazaar.core import cache, edge
from bazaar.core.cache import Scope
from bazaar.rentals import cache as rcache
from bazaar.storefront.cache import invalidate_store, store_scope
from bench.scenarios.edge import stack_module

# Serial (make pytest runs it alone, after the parallel phase): real nginx in front of an upstream whose fill is timed
# against nginx's slow-fill limit (a race by design).
pytestmark = pytest.mark.serial


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _events(event: str) -> float:
    from bazaar.core.metrics import CACHE_EVENTS

    return sum(
        sample.value
        for metric in CACHE_EVENTS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels.get("event") == event
    )


class Recorder:
    """Answers like nginx's purge server and records ``(method, path, monotonic time)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []
        self.settle_status = "MISS"
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                recorder.calls.append((self.command, self.path, time.monotonic()))
                if self.path.startswith("/settle/"):
                    hit = recorder.settle_status == "HIT"
                    self.send_response(200 if hit else 204)
                    self.send_header("X-Cache-Status", recorder.settle_status)
                else:
                    self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PURGE = do_GET = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.calls if method is None or m == method]


@pytest.fixture
def recorder(settings: Any) -> Iterator[Recorder]:
    rec = Recorder()
    settings.EDGE_PURGE_URL = rec.url
    settings.EDGE_PURGE_TIMEOUT = 0.5
    settings.EDGE_PURGE_DELAY = 0.2
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


@pytest.fixture(autouse=True)
def no_purges_left_behind() -> Iterator[None]:
    """Delayed purges of one test must not reach the next test's server."""
    yield
    _wait_for(lambda: edge.pending() == 0)
    time.sleep(0.05)


def _wait_for(predicate: Any, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


@pytest.mark.django_db
def test_nothing_is_sent_without_edge_purge_url(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    rec = Recorder()
    try:
        settings.EDGE_PURGE_URL = ""
        with django_capture_on_commit_callbacks(execute=True):
            invalidate_store("quiet-shop")
        time.sleep(0.1)
        assert rec.calls == []
        assert edge.purge(["/s/quiet-shop/"]) == 0
    finally:
        rec.server.shutdown()
        rec.server.server_close()


@pytest.mark.django_db
def test_purged_only_after_commit_then_settled_and_purged_again_later(
    recorder: Recorder, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        invalidate_store("edge-shop")
        assert recorder.calls == []  # nothing before the commit
    committed = time.monotonic()
    assert recorder.paths() == ["/purge/s/edge-shop/", "/settle/s/edge-shop/"]
    assert recorder.paths("PURGE") == ["/purge/s/edge-shop/"]
    # The delayed purge: once, EDGE_PURGE_DELAY after the first.
    assert _wait_for(lambda: len(recorder.paths("PURGE")) == 2)
    first, second = (t for m, _, t in recorder.calls if m == "PURGE")
    assert second - first >= 0.19
    assert second - committed < 1.0
    time.sleep(0.3)
    assert len(recorder.paths("PURGE")) == 2
    assert edge.pending() == 0


@pytest.mark.django_db
def test_a_fill_that_landed_during_the_settle_is_purged_again(
    recorder: Recorder, django_capture_on_commit_callbacks: Any
) -> None:
    recorder.settle_status = "HIT"
    with django_capture_on_commit_callbacks(execute=True):
        invalidate_store("busy-shop")
    assert recorder.paths() == ["/purge/s/busy-shop/", "/settle/s/busy-shop/", "/purge/s/busy-shop/"]


@pytest.mark.django_db
def test_second_purges_are_coalesced_per_path(
    recorder: Recorder, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        invalidate_store("shop-one")
    with django_capture_on_commit_callbacks(execute=True):
        invalidate_store("shop-one", "shop-two")
    assert recorder.paths("PURGE") == ["/purge/s/shop-one/", "/purge/s/shop-one/", "/purge/s/shop-two/"]
    assert _wait_for(lambda: len(recorder.paths("PURGE")) == 5)
    time.sleep(0.35)
    later = recorder.paths("PURGE")[3:]
    assert sorted(later) == ["/purge/s/shop-one/", "/purge/s/shop-two/"]


@pytest.mark.django_db
def test_registered_pages_of_each_app(recorder: Recorder, django_capture_on_commit_callbacks: Any) -> None:
    from bazaar.trading import cache as tcache

    with django_capture_on_commit_callbacks(execute=True):
        rcache.invalidate_title(7)
        cache.invalidate(tcache.TRAINERS, tcache.POKEMON)
    assert recorder.paths("PURGE") == [
        "/purge/rentals/",
        "/purge/api/rentals/titles",
        "/purge/rentals/titles/7/",
        "/purge/api/rentals/titles/7",
        "/purge/trading/",
    ]
    assert edge.urls_for(Scope("trading", "pokemon")) == []
    assert edge.urls_for(store_scope("a-b")) == ["/s/a-b/"]


@pytest.mark.django_db
def test_pages_are_purged_even_while_the_cache_is_down(
    recorder: Recorder, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database committed: the edge copy is stale whether or not Redis could take the bump.
    monkeypatch.setattr(cache.STATE, "breaker_until", time.monotonic() + 30)
    with django_capture_on_commit_callbacks(execute=True):
        invalidate_store("down-shop")
    assert recorder.paths("PURGE")[:1] == ["/purge/s/down-shop/"]


@pytest.mark.django_db
def test_unreachable_edge_is_counted_and_never_raises(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.EDGE_PURGE_URL = f"http://127.0.0.1:{_free_port()}"
    settings.EDGE_PURGE_DELAY = 0.05
    before = _events("edge_purge_failed")
    with django_capture_on_commit_callbacks(execute=True):
        rcache.invalidate_title(3)  # four pages
    assert _events("edge_purge_failed") - before >= 4
    assert edge.purge(["/a/", "/b/"]) == 2


def test_a_hanging_edge_costs_at_most_the_timeout(settings: Any) -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        settings.EDGE_PURGE_URL = f"http://127.0.0.1:{listener.getsockname()[1]}"
        settings.EDGE_PURGE_TIMEOUT = 0.2
        started = time.monotonic()
        assert edge.purge(["/s/one/", "/s/two/", "/s/three/"]) == 3
        assert time.monotonic() - started < 0.6


# --- a real nginx with the purge module -------------------------------------------------------------------


class Upstream:
    """Stands in for the app servers: answers every GET with ``version`` after ``delay`` seconds."""

    def __init__(self) -> None:
        self.version = "v1"
        self.delay = 0.0
        self.hits = 0
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                upstream.hits += 1
                body = (
                    upstream.version.encode()
                )  # read *before* the delay, like a fill that read the database
                time.sleep(upstream.delay)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Cache-Control", "public, max-age=0, must-revalidate")
                self.send_header("ETag", f'"{body.decode()}"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode(), r.headers.get("X-Cache-Status", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers.get("X-Cache-Status", "")


@contextlib.contextmanager
def _nginx_edge(settings: Any, edit: Callable[[str], str] = str) -> Iterator[tuple[str, Upstream]]:
    """A real nginx from the stack's rendering (``edit`` may change the text first) before an ``Upstream``."""
    stack = stack_module()
    if not shutil.which("nginx") or not stack.PURGE_MODULE.exists():
        pytest.skip("needs nginx and libnginx-mod-http-cache-purge")
    upstream = Upstream()
    port, purge_port = _free_port(), _free_port()
    # nginx workers run unprivileged: pytest's tmp_path (0700) is out of their reach.
    state = Path(tempfile.mkdtemp(prefix="bazaar-edge-test-"))
    state.chmod(0o755)
    conf = stack.nginx_conf(
        state, port=port, purge_port=purge_port, app_ports=[upstream.port], worker_processes="1"
    )
    (state / "nginx.conf").write_text(edit(conf))
    subprocess.run(["nginx", "-c", str(state / "nginx.conf"), "-p", str(state)], check=True)
    settings.EDGE_PURGE_URL = f"http://127.0.0.1:{purge_port}"
    settings.EDGE_PURGE_TIMEOUT = 0.5
    settings.EDGE_PURGE_DELAY = 0.3
    base = f"http://127.0.0.1:{port}"
    try:
        assert _wait_for(lambda: _get(base + "/healthz")[0] == 200, timeout=5)
        yield base, upstream
    finally:
        subprocess.run(
            ["nginx", "-c", str(state / "nginx.conf"), "-p", str(state), "-s", "quit"], check=False
        )
        upstream.server.shutdown()
        upstream.server.server_close()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def nginx_edge(settings: Any) -> Iterator[tuple[str, Upstream]]:
    with _nginx_edge(settings) as edge_and_upstream:
        yield edge_and_upstream


def test_nginx_caches_anonymous_pages_and_a_purge_drops_them(nginx_edge: tuple[str, Upstream]) -> None:
    base, upstream = nginx_edge
    page = base + "/s/edge-shop/"
    assert _get(page) == (200, "v1", "MISS")
    assert _get(page) == (200, "v1", "HIT")
    # Signed-in users, API clients and query strings always go to the app.
    assert _get(page, {"Cookie": "sessionid=abc"})[2] == "BYPASS"
    assert _get(page, {"Authorization": "Bearer x"})[2] == "BYPASS"
    assert _get(page + "?x=1")[2] == "BYPASS"
    upstream.version = "v2"
    assert _get(page) == (200, "v1", "HIT")  # the edge keeps its copy until told
    assert edge.purge(["/s/edge-shop/"]) == 0
    assert _get(page) == (200, "v2", "MISS")
    assert _get(page) == (200, "v2", "HIT")
    # Nothing but the listed pages is cached.
    assert _get(base + "/api/storefront/stores/edge-shop")[2] == ""


def test_nginx_answers_304_from_its_copy(nginx_edge: tuple[str, Upstream]) -> None:
    base, upstream = nginx_edge
    _get(base + "/rentals/")
    hits = upstream.hits
    req = urllib.request.Request(base + "/rentals/", headers={"If-None-Match": '"v1"'})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=5)
    assert caught.value.code == 304
    assert upstream.hits == hits


def _fill_in_flight_then_commit(base: str, upstream: Upstream, path: str, after_commit: Any) -> bool:
    """Start a fill that reads v1, then "commit" v2 and run ``after_commit`` while that fill is still on its way
    (it lands 40 ms after it read, under the 50 ms slow-fill limit, so nginx stores it).

    Returns whether the fill really was still in flight when ``after_commit`` began.
    """
    upstream.version, upstream.delay = "v1", 0.04
    filler = threading.Thread(target=_get, args=(base + path,))
    filler.start()
    while upstream.hits == 0 or upstream.version != "v1":
        time.sleep(0.001)
    time.sleep(0.005)  # the fill has read v1 and is on its way
    upstream.version, upstream.delay = "v2", 0.0  # the write commits
    in_flight = filler.is_alive()
    after_commit()
    filler.join()
    return in_flight


def test_on_bump_closes_the_race_with_a_fill_in_flight(nginx_edge: tuple[str, Upstream]) -> None:
    """A fill that read v1 before the commit and lands after the first purge is never served afterwards."""
    base, upstream = nginx_edge
    for n in range(5):
        upstream.hits = 0
        path = f"/s/race-{n}/"
        _fill_in_flight_then_commit(base, upstream, path, lambda p=path: edge.on_bump(store_scope(p[3:-1])))
        assert _get(base + path)[1] == "v2"
        assert _get(base + path)[1] == "v2"


def test_purge_alone_would_have_served_the_old_page(nginx_edge: tuple[str, Upstream]) -> None:
    """The control for the test above: without the settle step the in-flight fill lands after the purge."""
    base, upstream = nginx_edge
    for n in range(5):
        upstream.hits = 0
        path = f"/s/control-{n}/"
        if _fill_in_flight_then_commit(base, upstream, path, lambda p=path: edge.purge([p])):
            assert _get(base + path)[1] == "v1"  # stale: the race the settle step closes
            return
    pytest.fail("the fill never was in flight during the purge")


def test_slow_fills_are_not_stored(nginx_edge: tuple[str, Upstream]) -> None:
    base, upstream = nginx_edge
    upstream.delay = 0.08
    assert _get(base + "/trading/")[2] == "MISS"
    upstream.delay = 0.0
    assert _get(base + "/trading/")[2] == "MISS"
    assert _get(base + "/trading/")[2] == "HIT"


def _held_open_then_committed(base: str, upstream: Upstream, slug: str) -> list[tuple[int, str, str]]:
    """Serve ``/s/<slug>/`` from the edge (the HIT leaves the cache file open in the worker's open_file_cache),
    commit v2 through ``edge.on_bump`` (purge + settle), then read it twice."""
    page = f"{base}/s/{slug}/"
    upstream.version, upstream.delay = "v1", 0.0
    assert _get(page) == (200, "v1", "MISS")
    assert _get(page) == (200, "v1", "HIT")
    upstream.version = "v2"  # the write commits
    edge.on_bump(store_scope(slug))
    return [_get(page), _get(page)]


def test_a_page_held_open_is_never_served_after_its_purge(nginx_edge: tuple[str, Upstream]) -> None:
    """The edge location keeps HIT files open (open_file_cache, validity 0). Right after nginx starts its cache is
    "cold" (the cache loader has not run): a page whose node the settle step freed is looked up on disk by name,
    without the inode nginx remembers after a fill; the open descriptor of the purged file must not be used."""
    base, upstream = nginx_edge
    for n in range(3):
        first, second = _held_open_then_committed(base, upstream, f"held-{n}")
        assert first[:2] == (200, "v2")
        assert second[:2] == (200, "v2")


def test_open_file_cache_validity_would_serve_a_purged_page(settings: Any) -> None:
    """The control for the test above: with a validity (60 s) a cold cache serves the purged page from the
    descriptor it kept open."""

    def with_validity(conf: str) -> str:
        assert "open_file_cache_valid 0s;" in conf
        return conf.replace("open_file_cache_valid 0s;", "open_file_cache_valid 60s;")

    with _nginx_edge(settings, with_validity) as (base, upstream):
        first, _ = _held_open_then_committed(base, upstream, "held-control")
        assert first[:2] == (200, "v1")  # stale after the commit
