"""Lost invalidations are durable: with a private Redis that keeps its data on disk, stop it, write through the API,
the CLI and a task (and revoke a bearer token and a KV API key), restart both app servers (one process started
during the outage reads the ledger too), then bring Redis back (a) empty and (b) from a snapshot taken *before*
the writes — the case a production Redis with RDB/AOF persistence produces. Every one of 300 reads across the
cached surfaces must equal what the database says, and the revoked credentials must be refused every time."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system import faultkit, freshkit

# Serial (make pytest runs it alone, after the parallel phase): private Redis restarted under two servers; faultkit
# and freshkit's fixed var/ and STATIC_ROOT.
pytestmark = pytest.mark.serial

READS = [
    "/s/fresh-shop/",
    "/rentals/",
    "/api/rentals/titles",
    "/rentals/titles/{title}/",
    "/trading/",
    "/api/trading/pokemon",
    "/api/trading/pokemon/fp01/history",
    "kv:/api/kv/keys/greeting",
]
REVOKED = ["doomed:/api/accounts/me", "kv2:/api/kv/keys/greeting"]


def _path(w: freshkit.World, read: str) -> tuple[str, dict[str, str]]:
    if ":" not in read.split("/", 1)[0]:
        return read.format(**w.data), {}
    who, path = read.split(":", 1)
    secret = {"kv": w.data["kv_key"], "kv2": w.data["kv_key2"], "doomed": w.data["doomed_token"]}[who]
    return path.format(**w.data), {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def private_redis() -> Iterator[faultkit.PrivateRedis]:
    if faultkit.missing("redis-server"):
        pytest.skip("needs redis-server")
    r = faultkit.PrivateRedis().start()
    try:
        yield r
    finally:
        r.close()


@pytest.mark.redis
@pytest.mark.parametrize("comeback", ["empty", "snapshot"])
def test_nothing_stale_after_redis_returns(private_redis: faultkit.PrivateRedis, comeback: str) -> None:
    r = private_redis
    with freshkit.world(redis_url=r.url) as w:
        auth = {"Authorization": f"Bearer {w.data['kv_key']}"}
        for read in READS + REVOKED:  # every surface cached (and its flags set) before the outage
            path, headers = _path(w, read)
            for _ in range(2):
                assert freshkit.get(w.b.port, path, headers)[0] == 200, path
        r.stop(save=comeback == "snapshot")  # (b): the snapshot holds the entries, counters and flags above
        if comeback == "empty":
            shutil.rmtree(r.dir, ignore_errors=True)
            r.dir.mkdir()

        # Writes while Redis is down: API (raw-SQL fast path), CLI, a task, an admin revocation and the CLI's.
        status, body = freshkit.send(
            w.a.port, "PUT", "/api/kv/keys/greeting", {"value": "during the outage"}, auth
        )
        assert status in (200, 201), body
        w.manage("trading", "import", "--help")  # the CLI starts without a cache
        w.manage("kvadmin", "set", "--tenant", "fresh", "greeting", '"set by the CLI during the outage"')
        w.call("import_task")
        w.call("product_service")
        w.call("title_service")
        w.call("apikey_admin_revoke")
        w.call("token_admin_revoke")
        assert freshkit.get(w.b.port, "/s/fresh-shop/")[0] == 200  # served from the database meanwhile

        # Both app servers and the writer (the task's worker, the admin's process) restart during the outage: what
        # they noticed in memory is gone; only the database remembers.
        for server in (w.a, w.b):
            server.stop()
            server.start()
        w.restart_writer()
        r.start()

        stale: list[tuple[str, Any]] = []
        refused = 0
        for i in range(300):
            read = READS[i % len(READS)]
            path, headers = _path(w, read)
            got = freshkit.get(w.b.port if i % 2 else w.a.port, path, headers)
            if got != w.oracle(path, headers):
                stale.append((path, got[0]))
            if i % 10 == 0:
                for revoked in REVOKED:
                    path, headers = _path(w, revoked)
                    status, _ = freshkit.get(w.b.port, path, headers)
                    refused += status == 401
                    assert status == 401, f"{path}: a credential revoked during the outage was accepted"
        assert stale == []
        assert refused == 60
