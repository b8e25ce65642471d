"""The asynchronous watch server (bazaar.kvstore.watch_server), started for real: ``deploy/serve.py --watch-only``
(granian ASGI) beside a production WSGI server, on a database of its own (a SQLite file, or a new database on the
PostgreSQL server of DATABASE_URL). Writes go to the WSGI server; watches to the watch server, over real sockets.

What is held: the watch server answers with the WSGI server's bytes (auth errors, bad queries, 410, a batch),
delivers every change in order by long-poll and by server-sent events, resumes from a revision and from
Last-Event-ID, loses nothing across its own restart, and parks hundreds of watchers on a handful of threads.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.urls import resolve

from bazaar.core.testing import wait_until
from bazaar.kvstore import cli, watch
from bench.harness import PY, ROOT, Server, WatchServer, bench_env, free_port, wait_http
from tests.system.freshkit import _database

# Serial (make pytest runs it alone, after the parallel phase): one module-scoped world whose tests build on each
# other (retention, compaction), timed long-polls.
pytestmark = pytest.mark.serial


@dataclass
class World:
    env: dict[str, str]
    app: Server
    watcher: WatchServer
    secret: str

    def request(
        self, port: int, method: str, path: str, body: Any = None, secret: str | None = "", **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            auth = {"Authorization": f"Bearer {secret or self.secret}"} if secret is not None else {}
            data = None if body is None else json.dumps(body)
            conn.request(
                method, path, body=data, headers={**auth, "Content-Type": "application/json", **headers}
            )
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def put(self, key: str, value: Any) -> int:
        status, _h, body = self.request(self.app.port, "PUT", f"/api/kv/keys/{key}", {"value": value})
        assert status == 200, body
        return int(json.loads(body)["revision"])

    def both(self, path: str, **kwargs: Any) -> tuple[tuple[int, dict[str, str], bytes], ...]:
        """The same request to the WSGI server and to the watch server."""
        return tuple(self.request(port, "GET", path, **kwargs) for port in (self.app.port, self.watcher.port))

    def shell(self, code: str) -> str:
        r = subprocess.run(
            [PY, "manage.py", "shell", "--no-imports", "-c", code],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return r.stdout.strip()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    name = f"watchsrv_{uuid.uuid4().hex[:10]}"
    database_url, drop = _database(name)
    tmp = Path(tempfile.mkdtemp(prefix="bazaar-watchsrv-"))
    extra = {
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "CACHE_SQLITE_PATH": str(tmp / "cache.sqlite3"),
        "BAZAAR_CACHE_PREFIX": name,
        "CELERY_BROKER_URL": "",
        "EDGE_PURGE_URL": "",
        "BAZAAR_VAR_DIR": str(tmp),
        "KVSTORE_WATCH_POLL_MS": "50",
        "KVSTORE_WATCH_STREAM_SECONDS": "30",
        "PROMETHEUS_MULTIPROC_DIR": "",
    }
    env = bench_env(extra)
    app, watcher = Server(workers=1, threads=2, env=extra), WatchServer(env=extra)
    try:
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        w = World(env=env, app=app, watcher=watcher, secret="")
        w.secret = w.shell(
            "from bazaar.kvstore import services; t = services.tenant_create(slug='acme'); "
            "print(services.apikey_create(tenant_id=t.pk, name='t').secret)"
        )
        app.start()
        watcher.start()
        yield w
    finally:
        watcher.stop()
        app.stop()
        drop()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


class Stream:
    """A server-sent event stream read over a real socket."""

    def __init__(self, port: int, path: str, secret: str, **headers: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.conn.request(
            "GET",
            path,
            headers={"Authorization": f"Bearer {secret}", "Accept": "text/event-stream", **headers},
        )
        self.response = self.conn.getresponse()

    def events(self, n: int) -> list[dict[str, Any]]:
        """The next ``n`` change events (comments and the retry line skipped)."""
        out: list[dict[str, Any]] = []
        event: dict[str, str] = {}
        while len(out) < n:
            line = self.response.fp.readline().decode().rstrip("\n")
            if line == "":
                if event.get("event") == "change":
                    out.append({"id": int(event["id"]), **json.loads(event["data"])})
                event = {}
            elif not line.startswith(":") and ":" in line:
                field_, value = line.split(":", 1)
                event[field_] = value.strip()
        return out

    def close(self) -> None:
        self.conn.close()


def test_the_watch_path_is_the_api_route() -> None:
    assert resolve(watch.WATCH_PATH).url_name == "watch_changes"


def test_errors_and_batches_are_the_wsgi_servers_bytes(world: World) -> None:
    world.put("parity/a", 1)
    world.put("parity/b", 2)
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("/api/kv/watch?prefix=parity/", {}, 200),
        ("/api/kv/watch?prefix=parity/&limit=1", {}, 200),
        ("/api/kv/watch?since=0", {"secret": None}, 401),
        ("/api/kv/watch?since=0", {"secret": "kv_not-a-key"}, 401),
        ("/api/kv/watch?wait=61", {}, 422),
        ("/api/kv/watch?since=abc", {}, 422),
        ("/api/kv/watch?since=-1", {}, 422),
    ]
    for path, kwargs, status in cases:
        wsgi, asgi = world.both(path, **kwargs)
        assert wsgi[0] == asgi[0] == status, (path, wsgi, asgi)
        assert wsgi[2] == asgi[2], path
        for header in (
            "content-type",
            "x-revision",
            "www-authenticate",
            "x-content-type-options",
            "cache-control",
        ):
            assert wsgi[1].get(header) == asgi[1].get(header), (path, header)
    assert json.loads(world.both("/api/kv/watch?wait=61")[1][2])["code"] == "invalid_wait"


def test_only_the_watch_is_served(world: World) -> None:
    status, _h, body = world.request(world.watcher.port, "GET", "/api/kv/keys/parity/a")
    assert (status, json.loads(body)["code"]) == (404, "not_found")


def _held(world: World) -> int:
    """How many watchers the watch server holds now (its /watchz)."""
    status, _, body = world.request(world.watcher.port, "GET", "/watchz", secret=None)
    assert status == 200, body
    return int(json.loads(body)["held"])


def test_a_long_poll_waits_without_a_thread_and_wakes_on_a_commit(world: World) -> None:
    since = world.put("lp/seed", 0)
    results: list[tuple[int, dict[str, str], bytes, float]] = []

    def poll() -> None:
        status, headers, body = world.request(
            world.watcher.port, "GET", f"/api/kv/watch?prefix=lp/&since={since}&wait=20"
        )
        results.append((status, headers, body, time.monotonic()))

    pollers = [threading.Thread(target=poll) for _ in range(3)]
    for t in pollers:
        t.start()
    wait_until(lambda: _held(world) == 3, what="the watch server holds the 3 long-polls")
    assert results == [], "nothing changed yet: the long-polls wait"
    revisions = [world.put("lp/x", 1), world.put("other/y", 2)]
    written = time.monotonic()
    for t in pollers:
        t.join(25)
    assert len(results) == 3
    for status, headers, body, at in results:
        page = json.loads(body)
        assert status == 200
        assert [(c["key"], c["revision"]) for c in page["items"]][:1] == [("lp/x", revisions[0])]
        assert int(headers["x-revision"]) == page["revision"] >= revisions[0]
        assert int(headers["content-length"]) == len(body)
        assert at - written < 5, "woken by the commit, not by the 20 s timeout"
    # The same batch the WSGI server answers for the revision the watcher had.
    wsgi = world.request(world.app.port, "GET", f"/api/kv/watch?prefix=lp/&since={since}")
    assert json.loads(wsgi[2])["items"] == json.loads(results[0][2])["items"]


def test_a_long_poll_times_out_empty_with_the_current_revision(world: World) -> None:
    now = world.put("quiet/seed", 0)
    started = time.monotonic()
    status, headers, body = world.request(
        world.watcher.port, "GET", f"/api/kv/watch?prefix=quiet/x&since={now}&wait=1"
    )
    assert status == 200
    assert 0.9 < time.monotonic() - started < 5
    assert json.loads(body) == {"items": [], "revision": now}
    assert headers["x-revision"] == str(now)


def test_server_sent_events_in_order_then_resume_from_last_event_id(world: World) -> None:
    since = world.put("sse/seed", 0)
    stream = Stream(world.watcher.port, f"/api/kv/watch?prefix=sse/&since={since}", world.secret)
    assert stream.response.status == 200
    assert stream.response.getheader("Content-Type", "").startswith("text/event-stream")
    assert stream.response.getheader("X-Accel-Buffering") == "no"
    written = [world.put(f"sse/k{i}", i) for i in range(5)]
    events = stream.events(5)
    stream.close()
    assert [e["id"] for e in events] == [e["revision"] for e in events] == written
    assert [(e["key"], e["value"]) for e in events] == [(f"sse/k{i}", i) for i in range(5)]
    resumed = Stream(
        world.watcher.port,
        "/api/kv/watch?prefix=sse/&since=0",
        world.secret,
        **{"Last-Event-ID": str(written[2])},
    )
    assert [e["id"] for e in resumed.events(2)] == written[3:]
    resumed.close()


def test_a_compacted_revision_is_410_with_where_to_resume(world: World) -> None:
    world.shell(
        "from bazaar.kvstore import services; from bazaar.kvstore.models import Tenant; "
        "t = Tenant.objects.get(slug='acme'); "
        "services.tenant_set_retention(tenant_id=t.pk, revisions=2, seconds=None); services.changes_compact()"
    )
    wsgi, asgi = world.both("/api/kv/watch?since=0")
    assert wsgi[0] == asgi[0] == 410
    assert wsgi[2] == asgi[2]
    assert json.loads(asgi[2])["code"] == "revision_compacted"
    stream = Stream(world.watcher.port, "/api/kv/watch?since=0", world.secret)
    assert stream.response.status == 410
    assert json.loads(stream.response.read())["code"] == "revision_compacted"
    stream.close()
    world.shell(
        "from bazaar.kvstore import services; from bazaar.kvstore.models import Tenant; "
        "t = Tenant.objects.get(slug='acme'); "
        "services.tenant_set_retention(tenant_id=t.pk, revisions=10000, seconds=None)"
    )


def test_a_restart_of_the_watch_server_loses_nothing(world: World) -> None:
    since = world.put("restart/seed", 0)
    stream = Stream(world.watcher.port, f"/api/kv/watch?prefix=restart/&since={since}", world.secret)
    before = [world.put(f"restart/a{i}", i) for i in range(3)]
    got = stream.events(3)
    world.watcher.stop()  # SIGTERM, then SIGKILL: the stream is cut
    stream.close()
    during = [world.put(f"restart/b{i}", i) for i in range(3)]  # committed while no watch server runs
    world.watcher.start()
    resumed = Stream(
        world.watcher.port, f"/api/kv/watch?prefix=restart/&since={since}", world.secret,
        **{"Last-Event-ID": str(got[-1]["id"])},
    )  # fmt: skip
    after = [world.put(f"restart/c{i}", i) for i in range(2)]
    got += resumed.events(5)
    resumed.close()
    assert [e["id"] for e in got] == before + during + after


def test_hundreds_of_parked_watchers_hold_no_thread_each(world: World) -> None:
    since = world.put("many/seed", 0)
    n = 300
    conns = []
    for i in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", world.watcher.port, timeout=60)
        path = f"/api/kv/watch?prefix=many/&since={since}&wait=30"
        headers = {"Authorization": f"Bearer {world.secret}"}
        if i % 2:
            headers["Accept"] = "text/event-stream"
        conn.request("GET", path, headers=headers)
        conns.append(conn)
    deadline = time.monotonic() + 30
    while (held := json.loads(world.request(world.watcher.port, "GET", "/watchz")[2])["held"]) < n:
        assert time.monotonic() < deadline, held
        time.sleep(0.2)
    usage = world.watcher.usage()
    assert usage["threads"] < 40, (
        usage
    )  # granian's own threads + the pool of 4 + the poller, not one per watcher
    revision = world.put("many/x", 1)
    delivered = 0
    for i, conn in enumerate(conns):
        r = conn.getresponse()
        if i % 2:
            line = b""
            while not line.startswith(b"id: "):
                line = r.fp.readline()
            delivered += int(line[4:]) == revision
        else:
            delivered += [c["revision"] for c in json.loads(r.read())["items"]] == [revision]
        conn.close()
    assert delivered == n


def test_nginx_of_the_stack_routes_the_watch_to_the_watch_server_unbuffered(world: World) -> None:
    from bench.scenarios.edge import stack_module

    stack = stack_module()
    if not shutil.which("nginx") or not stack.PURGE_MODULE.exists():
        pytest.skip("needs nginx and libnginx-mod-http-cache-purge")
    state = Path(tempfile.mkdtemp(prefix="bazaar-watch-nginx-"))
    state.chmod(0o755)  # nginx workers run unprivileged
    port, purge_port = free_port(), free_port()
    conf = stack.nginx_conf(
        state,
        port=port,
        purge_port=purge_port,
        app_ports=[world.app.port],
        watch_ports=[world.watcher.port],
        worker_processes="1",
    )
    (state / "nginx.conf").write_text(conf)
    subprocess.run(["nginx", "-c", str(state / "nginx.conf"), "-p", str(state)], check=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        since = world.put("edge/seed", 0)
        stream = Stream(port, f"/api/kv/watch?prefix=edge/&since={since}", world.secret)
        written = world.put("edge/k", 1)
        assert [e["id"] for e in stream.events(1)] == [written]  # passed through at once, not buffered
        stream.close()
        status, _h, body = world.request(port, "GET", f"/api/kv/watch?prefix=edge/&since={since}&wait=0")
        assert status == 200
        assert [c["revision"] for c in json.loads(body)["items"]][-1] == written
        # The watch went to the watch server: while it is down nginx has nowhere to send it (502), and the
        # rest of the API still goes to the app server.
        world.watcher.stop()
        assert world.request(port, "GET", "/api/kv/watch?since=0")[0] == 502
        assert world.request(port, "GET", "/api/kv/keys/edge/k")[0] == 200
    finally:
        if world.watcher.proc is None:
            world.watcher.start()
        subprocess.run(
            ["nginx", "-c", str(state / "nginx.conf"), "-p", str(state), "-s", "quit"], check=False
        )
        shutil.rmtree(state, ignore_errors=True)


def test_the_cli_watches_through_the_watch_server(world: World) -> None:
    since = world.put("cli/seed", 0)
    out = io.StringIO()
    argv = ["--url", world.app.base, "--watch-url", world.watcher.base, "--key", world.secret]
    argv += ["watch", "--prefix", "cli/", "--since", str(since), "--wait", "20", "--once"]
    done: list[int] = []
    follower = threading.Thread(target=lambda: done.append(cli.main(argv, out=out, err=io.StringIO())))
    follower.start()
    wait_until(lambda: _held(world) == 1, what="the watch server holds the CLI's watch")
    revision = world.put("cli/k", "v")
    follower.join(25)
    assert done == [0]
    assert out.getvalue() == f'{revision}\tset\tcli/k\t"v"\n'
