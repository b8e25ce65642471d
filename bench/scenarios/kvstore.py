"""Key-value store scenarios: a cached GET (fast path) next to nginx serving the same bytes, PUT throughput on
PostgreSQL with 16 clients, and CAS contention (32 clients x 100 increments must end at exactly 3,200)."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import re
import statistics
import tempfile
import threading
import time
import uuid
from typing import Any

from bench.harness import Context, Scenario, compare_with_nginx, fetch, wrk


def _demo_key(ctx: Context) -> str:
    """The demo tenant's API key: `manage.py demo` is idempotent and prints it (derived from SECRET_KEY)."""
    out = ctx.manage("demo")
    m = re.search(r"API key\s+(kv_\S+)", out)
    if m is None:
        raise RuntimeError(f"the demo did not print a kvstore API key:\n{out}")
    return m.group(1)


def get_hit(ctx: Context) -> dict[str, Any]:
    key = _demo_key(ctx)
    headers = {"Authorization": f"Bearer {key}"}
    out = compare_with_nginx(ctx, "kvstore_get_hit", "/api/kv/keys/config/limits", headers=headers, warm=20)
    out["target_ratio"] = 0.10
    out["meets_target"] = bool(out["ratio_to_nginx"] and out["ratio_to_nginx"] >= 0.10)
    return out


PUT_LUA = """
local n = 0
local run = "%(run)s"
local body = '{"value": {"n": 1, "text": "bazaar kv bench payload", "tags": ["a", "b", "c"]}}'
local headers = {["Authorization"] = "Bearer %(key)s", ["Content-Type"] = "application/json"}
request = function()
  n = n + 1
  return wrk.format("PUT", "/api/kv/keys/bench/" .. run .. "/" .. n, headers, body)
end
"""


_GROUP_METRIC = re.compile(r'^(bazaar_group_commit(?:s|_items)_total)\{name="kv_put"\} ([0-9.e+]+)$', re.M)


def _put_groups(base: str) -> dict[str, float]:
    """The KV PUT group commit's counters from /metrics (summed over the server's workers)."""
    status, body, _ = fetch(base + "/metrics")
    if status != 200:
        return {}
    found = {name: float(value) for name, value in _GROUP_METRIC.findall(body.decode())}
    return {
        "groups": found.get("bazaar_group_commits_total", 0.0),
        "items": found.get("bazaar_group_commit_items_total", 0.0),
    }


def put_throughput(ctx: Context) -> dict[str, Any]:
    key = _demo_key(ctx)
    run = uuid.uuid4().hex[:8]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(PUT_LUA % {"run": run, "key": key})
        script = f.name
    before = _put_groups(ctx.server.base)
    try:
        app = wrk(ctx.server.base + "/", duration=ctx.duration, connections=16, script=script)
    finally:
        os.unlink(script)
    after = _put_groups(ctx.server.base)
    groups = after.get("groups", 0.0) - before.get("groups", 0.0)
    items = after.get("items", 0.0) - before.get("items", 0.0)
    # Every write must have succeeded and be readable afterwards.
    status, body, _ = fetch(
        f"{ctx.server.base}/api/kv/keys?prefix=bench/{run}/&limit=1",
        headers={"Authorization": f"Bearer {key}"},
    )
    if status != 200 or not json.loads(body)["items"]:
        raise RuntimeError(f"writes are not readable: {status} {body[:200]!r}")
    app.pop("raw", None)
    return {
        "app": app,
        "writes_per_s": app["rps"],
        "non_2xx": app["non_2xx"],
        # Writes per group commit (PostgreSQL; 0 groups where the server has none, e.g. an older revision).
        "group_commit": {
            "groups": groups,
            "writes": items,
            "mean_size": round(items / groups, 2) if groups else None,
        },
        "target_writes_per_s": 1000,
        "meets_target": app["rps"] >= 1000 and app["non_2xx"] == 0,
        "unit": "writes/s",
    }


def cas_contention(ctx: Context, clients: int = 32, increments: int = 100) -> dict[str, Any]:
    key = _demo_key(ctx)
    host, port = "127.0.0.1", ctx.server.port
    path = f"/api/kv/keys/bench/counter-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    status, body, _ = fetch(
        ctx.server.base + path, "PUT", json.dumps({"value": 0, "if_version": 0}).encode(), headers
    )
    if status != 200:
        raise RuntimeError(f"could not create the counter: {status} {body!r}")
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"gets": 0, "puts": 0, "conflicts": 0, "errors": 0}
    deadline = time.monotonic() + 600  # bounded: never more than 10 minutes

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        rng = random.Random()
        local = {"gets": 0, "puts": 0, "conflicts": 0, "errors": 0}
        mine: list[float] = []
        try:
            for _ in range(increments):
                started = time.perf_counter()
                attempt = 0
                while time.monotonic() < deadline:
                    conn.request("GET", path, headers=headers)
                    r = conn.getresponse()
                    entry = json.loads(r.read())
                    local["gets"] += 1
                    payload = json.dumps({"value": entry["value"] + 1, "if_version": entry["version"]})
                    conn.request("PUT", path, body=payload, headers=headers)
                    r = conn.getresponse()
                    r.read()
                    local["puts"] += 1
                    if r.status == 200:
                        break
                    if r.status != 409:
                        local["errors"] += 1
                    local["conflicts"] += 1
                    attempt += 1
                    # Jittered backoff: contention wastes fewer round trips than a tight retry loop.
                    time.sleep(rng.uniform(0, min(0.02, 0.001 * 2**attempt)))
                mine.append((time.perf_counter() - started) * 1000)
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)
                for k, v in local.items():
                    counts[k] += v

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    status, body, _ = fetch(ctx.server.base + path, headers=headers)
    final = json.loads(body)
    expected = clients * increments
    ok = final["value"] == expected and final["version"] == expected + 1
    result = {
        "app": {
            "rps": round(expected / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
            "p99_ms": round(sorted(latencies)[int(len(latencies) * 0.99) - 1], 2) if latencies else None,
        },
        "clients": clients,
        "increments_per_client": increments,
        "final_value": final["value"],
        "final_version": final["version"],
        "expected": expected,
        "exact": ok,
        "elapsed_s": round(elapsed, 1),
        **counts,
        "unit": "successful increments/s",
    }
    if not ok:
        raise AssertionError(f"CAS lost updates: {result}")
    return result


def incr_contention(ctx: Context, clients: int = 32, increments: int = 100) -> dict[str, Any]:
    """The same counter as ``cas_contention`` with the server-side increment: one POST per increment, no retry."""
    key = _demo_key(ctx)
    path = f"/api/kv/keys/bench/incr-{uuid.uuid4().hex[:8]}/incr"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ctx.server.port, timeout=30)
        mine: list[float] = []
        try:
            for _ in range(increments):
                started = time.perf_counter()
                conn.request("POST", path, body=b'{"by": 1}', headers=headers)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    with lock:
                        errors[0] += 1
                mine.append((time.perf_counter() - started) * 1000)
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    _status, body, _ = fetch(ctx.server.base + path.removesuffix("/incr"), headers=headers)
    final = json.loads(body)["value"]
    expected = clients * increments
    result = {
        "app": {
            "rps": round(expected / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(sorted(latencies)[int(len(latencies) * 0.99) - 1], 2),
        },
        "clients": clients,
        "increments_per_client": increments,
        "final_value": final,
        "expected": expected,
        "exact": final == expected and errors[0] == 0,
        "errors": errors[0],
        "elapsed_s": round(elapsed, 1),
        "unit": "successful increments/s",
    }
    if not result["exact"]:
        raise AssertionError(f"incr lost updates: {result}")
    return result


def watch_delivery(ctx: Context, watchers: int = 200, writers: int = 16, writes: int = 20) -> dict[str, Any]:
    """``watchers`` long-poll followers of one prefix (each a loop like ``bazaar kv watch``) while ``writers``
    clients commit ``writes`` PUTs each: every follower must receive every committed revision exactly once, in
    order (checked), and the delivery latency after each write's answer is measured on the same clock."""
    key = _demo_key(ctx)
    prefix = f"bench/watch-{uuid.uuid4().hex[:8]}/"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    _s, body, _ = fetch(f"{ctx.server.base}/api/kv/keys?limit=1", headers=headers)
    since0 = json.loads(body)["revision"]
    total = writers * writes
    committed: dict[int, float] = {}
    got: list[list[tuple[int, float]]] = [[] for _ in range(watchers)]
    lock = threading.Lock()
    deadline = time.monotonic() + 120

    def follower(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ctx.server.port, timeout=60)
        since = since0
        try:
            while len(got[i]) < total and time.monotonic() < deadline:
                asked = time.monotonic()
                conn.request("GET", f"/api/kv/watch?since={since}&prefix={prefix}&wait=10", headers=headers)
                page = json.loads(conn.getresponse().read())
                now = time.perf_counter()
                got[i].extend((c["revision"], now) for c in page["items"])
                since = page["revision"]
                if not page["items"] and time.monotonic() - asked < 1:
                    time.sleep(1)  # no room to wait on the server: back off like the CLI
        finally:
            conn.close()

    def writer(w: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ctx.server.port, timeout=30)
        try:
            for n in range(writes):
                conn.request(
                    "PUT", f"/api/kv/keys/{prefix}{w}", body=json.dumps({"value": n}), headers=headers
                )
                r = conn.getresponse()
                answer = json.loads(r.read())
                with lock:
                    committed[answer["revision"]] = time.perf_counter()
        finally:
            conn.close()

    followers = [threading.Thread(target=follower, args=(i,)) for i in range(watchers)]
    for t in followers:
        t.start()
    time.sleep(2)
    started = time.monotonic()
    ws = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in ws:
        t.start()
    for t in ws:
        t.join()
    write_s = time.monotonic() - started
    for t in followers:
        t.join()
    expected = sorted(committed)
    lost = reordered = complete = 0
    latencies: list[float] = []
    for seen in got:
        revs = [r for r, _ in seen]
        reordered += sum(1 for a, b in itertools.pairwise(revs) if b <= a)
        lost += len(set(expected) - set(revs))
        complete += sorted(set(revs)) == expected
        latencies += [(at - committed[r]) * 1000 for r, at in seen if r in committed]
    latencies.sort()
    result = {
        "app": {
            "rps": round(total / write_s, 1),
            "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1) if latencies else None,
        },
        "watchers": watchers,
        "writers": writers,
        "writes": total,
        "watchers_complete": complete,
        "lost": lost,
        "reordered": reordered,
        "waiting_capacity": "KVSTORE_WATCH_MAX_WAITING x workers; the rest are answered at once and re-poll after 1 s",
        "unit": "writes/s while watched; latency = write answered -> change received",
    }
    if lost or reordered:
        raise AssertionError(f"watch lost or reordered changes: {result}")
    return result


SCENARIOS = [
    Scenario(
        "kvstore_get_hit",
        "GET /api/kv/keys/<key> cache hit (fast path, API key checked) vs nginx, same bytes",
        get_hit,
        needs=("postgres", "redis"),
        app="kvstore",
        rounds="own",
    ),
    Scenario(
        "kvstore_put_throughput",
        "PUT /api/kv/keys/<distinct key>, 16 clients, PostgreSQL",
        put_throughput,
        needs=("postgres", "redis"),
        app="kvstore",
    ),
    Scenario(
        "kvstore_cas_contention",
        "32 clients x 100 increments via GET + PUT if_version retry; final value must be 3,200",
        cas_contention,
        needs=("postgres", "redis"),
        app="kvstore",
    ),
    Scenario(
        "kvstore_incr_contention",
        "32 clients x 100 increments via POST /incr (server-side, no retry); final value must be 3,200",
        incr_contention,
        needs=("postgres", "redis"),
        app="kvstore",
    ),
    Scenario(
        "kvstore_watch_delivery",
        "200 long-poll watchers of one prefix, 16 writers x 20 PUTs: 0 lost/reordered, delivery latency",
        watch_delivery,
        needs=("postgres", "redis"),
        app="kvstore",
    ),
]
