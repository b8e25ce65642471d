"""Concurrency on PostgreSQL + the shared cache: no read after a committed write returns the old value (threads
in one process, and two real app servers), and CAS increments under contention lose nothing."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connection

from bazaar.core.fastpath import FastPath
from bazaar.core.testing import wsgi_call
from bazaar.kvstore.tests.conftest import KV

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _wsgi(app: FastPath, method: str, path: str, secret: str, body: bytes = b"") -> tuple[int, bytes]:
    status, _headers, out = wsgi_call(
        app, path, method=method, body=body, HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    return int(status[:3]), out


def _run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return errors


def _check_no_stale_reads(
    write: Callable[[int], int], read: Callable[[], int], *, writes: int, readers: int
) -> tuple[int, int]:
    """Writers commit versions 1..n; each read must see at least the newest version committed before it began."""
    committed = [0]
    lock = threading.Lock()
    stop = threading.Event()
    stale: list[tuple[int, int]] = []
    reads = [0]

    def writer() -> None:
        try:
            for i in range(writes):
                version = write(i)
                with lock:
                    committed[0] = max(committed[0], version)
        finally:
            stop.set()

    def reader() -> None:
        while not stop.is_set():
            with lock:
                floor = committed[0]
            seen = read()
            with lock:
                reads[0] += 1
                if seen < floor:
                    stale.append((seen, floor))

    errors = _run_threads([writer] + [reader] * readers)
    assert errors == []
    assert stale == []
    return committed[0], reads[0]


def test_no_stale_read_after_a_committed_write_threads(kv: KV) -> None:
    app = FastPath(get_wsgi_application())
    assert _wsgi(app, "PUT", "/api/kv/keys/hot", kv.secret, b'{"value": -1}')[0] == 200

    def write(i: int) -> int:
        status, body = _wsgi(app, "PUT", "/api/kv/keys/hot", kv.secret, json.dumps({"value": i}).encode())
        assert status == 200, body
        return int(json.loads(body)["version"])

    def read() -> int:
        status, body = _wsgi(app, "GET", "/api/kv/keys/hot", kv.secret)
        assert status == 200, body
        return int(json.loads(body)["version"])

    last, reads = _check_no_stale_reads(write, read, writes=150, readers=6)
    assert last == 151
    assert reads > 150


def test_cas_increments_under_contention_lose_nothing(kv: KV) -> None:
    app = FastPath(get_wsgi_application())
    _wsgi(app, "PUT", "/api/kv/keys/counter", kv.secret, b'{"value": 0}')
    clients, each = 8, 25
    conflicts = [0]

    def incrementer() -> None:
        for _ in range(each):
            while True:
                status, body = _wsgi(app, "GET", "/api/kv/keys/counter", kv.secret)
                entry = json.loads(body)
                new = json.dumps({"value": entry["value"] + 1, "if_version": entry["version"]}).encode()
                status, body = _wsgi(app, "PUT", "/api/kv/keys/counter", kv.secret, new)
                if status == 200:
                    break
                assert status == 409, body
                conflicts[0] += 1

    assert _run_threads([incrementer] * clients) == []
    status, body = _wsgi(app, "GET", "/api/kv/keys/counter", kv.secret)
    assert status == 200
    entry = json.loads(body)
    assert entry["value"] == clients * each
    assert entry["version"] == clients * each + 1


# Serial: deploy/serve.py starts a Celery worker beside each server when a broker is set, on the run's one queue.
@pytest.mark.serial
@pytest.mark.redis
def test_no_stale_read_across_two_app_servers(kv: KV, cache_namespace: str) -> None:
    """Two real servers (granian, one worker each) on the test database and the same Redis namespace: writes
    through one, reads through the other (fast path included) never go back in time."""
    from django.conf import settings

    from bench.harness import Server

    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {"DATABASE_URL": url, "REDIS_URL": settings.REDIS_URL, "BAZAAR_CACHE_PREFIX": cache_namespace}
    servers = [Server(kind="granian", workers=1, env=env), Server(kind="granian", workers=1, env=env)]
    try:
        for s in servers:
            s.start()
        a, b = servers

        def call(base: str, method: str, body: bytes | None = None) -> tuple[int, dict[str, Any], str]:
            req = urllib.request.Request(
                f"{base}/api/kv/keys/shared",
                data=body,
                method=method,
                headers={"Authorization": f"Bearer {kv.secret}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, json.loads(r.read()), r.headers.get("X-Cache", "")
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read() or b"{}"), ""

        assert call(a.base, "PUT", b'{"value": 0}')[0] == 200
        caches: list[str] = []

        def write(i: int) -> int:
            base = a.base if i % 2 else b.base
            status, body, _ = call(base, "PUT", json.dumps({"value": i}).encode())
            assert status == 200, body
            return int(body["version"])

        def read() -> int:
            status, body, xc = call(b.base if len(caches) % 2 else a.base, "GET")
            caches.append(xc)
            assert status == 200, body
            time.sleep(0.001)
            return int(body["version"])

        last, reads = _check_no_stale_reads(write, read, writes=80, readers=4)
        assert last == 81
        assert reads > 80
        assert "hit" in caches  # the cache (and the fast path) really took part
    finally:
        for s in servers:
            s.stop()


def test_two_admins_stepping_down_at_once_leave_one_admin(make_user: Any) -> None:
    """Both admins of a tenant step down (to viewer) at the same moment, ten times: each sees the other as an admin
    when it starts, so without the tenant lock both would succeed and leave no admin. With it, one wins and the
    other gets ``last_admin`` (nothing written), and the tenant always keeps exactly one admin."""
    from bazaar.core.errors import Conflict
    from bazaar.kvstore import services
    from bazaar.kvstore.models import Role, TenantMember

    root = make_user("root", is_staff=True)
    for round_ in range(10):
        tenant = services.tenant_create(slug=f"pair-{round_}")
        users = [make_user(f"a{round_}"), make_user(f"b{round_}")]
        members = [
            services.member_add(tenant_id=tenant.pk, who=u.username, role="admin", actor=root) for u in users
        ]
        start = threading.Barrier(2)
        refused: list[str] = []

        def step_down(i: int, tenant_id: int = tenant.pk) -> Callable[[], None]:
            def run() -> None:
                start.wait()
                try:
                    services.member_set_role(
                        tenant_id=tenant_id, member_id=members[i].pk, role="viewer", actor=users[i]
                    )
                except Conflict as exc:
                    refused.append(exc.code)

            return run

        assert _run_threads([step_down(0), step_down(1)]) == []
        assert refused == ["last_admin"]
        assert TenantMember.objects.filter(tenant=tenant, role=Role.ADMIN).count() == 1
