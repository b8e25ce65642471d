"""kvstore_watch_1000: a thousand (and more) concurrent watchers on ONE watch server while 16 writers PUT.

The watch server (``deploy/serve.py --watch-only``: granian ASGI, one worker) is started fresh for each level of
watchers. Half the watchers long-poll (``wait=30``, a new request after each batch, like ``bazaar kv watch``), half
follow server-sent events; all follow one prefix from the same revision, over their own sockets, from one asyncio
loop in this process. Once every watcher is parked, 16 writer threads commit 20 PUTs each through the app server
(WSGI). Checked: every watcher receives every committed revision exactly once and in order (0 lost, 0 reordered),
or the scenario fails. Measured: the delivery latency from each PUT's answer to the change's arrival at each
watcher (same clock), and the watch server's resident memory and threads (all its processes) idle, with every
watcher parked, and at the end. ``BENCH_WATCHERS`` (default ``1000``; e.g. ``1000,2000,5000``) sets the levels,
``BENCH_WATCH_SSE_SHARE`` (default 0.5) the share of watchers on server-sent events.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench.harness import Context, Scenario, WatchServer, fetch, save_figure
from bench.scenarios.kvstore import _demo_key

WRITERS = 16
WRITES = 20


@dataclass
class Follower:
    stream: bool
    got: list[tuple[int, float]] = field(default_factory=list)
    requests: int = 0
    reconnects: int = 0


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    status = await reader.readline()
    if not status.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"watch answered {status!r}")
    out: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, value = line.decode().split(":", 1)
        out[name.strip().lower()] = value.strip()
    return out


async def _long_poll(
    f: Follower, port: int, query: str, key: str, since: int, total: int, until: float
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while len(f.got) < total and time.monotonic() < until:
            writer.write(
                f"GET /api/kv/watch?{query}&since={since}&wait=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {key}\r\n\r\n".encode()
            )
            f.requests += 1
            headers = await _headers(reader)
            body = await reader.readexactly(int(headers["content-length"]))
            now = time.perf_counter()
            page = json.loads(body)
            f.got.extend((c["revision"], now) for c in page["items"])
            since = page["revision"]
    finally:
        writer.close()


async def _events(f: Follower, port: int, query: str, key: str, since: int, total: int, until: float) -> None:
    last = since
    while len(f.got) < total and time.monotonic() < until:  # a stream ends after KVSTORE_WATCH_STREAM_SECONDS
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"GET /api/kv/watch?{query}&since={since} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\nLast-Event-ID: {last}\r\n\r\n".encode()
            )
            f.requests += 1
            await _headers(reader)  # chunked transfer: size line, data, CRLF
            pending, event_id = b"", None
            while len(f.got) < total:
                size = int((await reader.readline()).strip() or b"0", 16)
                if size == 0:
                    break
                pending += await reader.readexactly(size)
                await reader.readexactly(2)
                now = time.perf_counter()
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.startswith(b"id: "):
                        event_id = int(line[4:])
                    elif line == b"" and event_id is not None:
                        f.got.append((event_id, now))
                        last, event_id = event_id, None
        finally:
            writer.close()
        f.reconnects += 1


def _level(ctx: Context, key: str, watchers: int) -> dict[str, Any]:
    server = WatchServer(env=ctx.server.env).start()
    try:
        idle = server.usage()
        prefix = f"bench/watch-{uuid.uuid4().hex[:8]}/"
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        _s, body, _ = fetch(f"{ctx.server.base}/api/kv/keys?limit=1", headers=headers)
        since0 = json.loads(body)["revision"]
        total = WRITERS * WRITES
        sse = float(os.environ.get("BENCH_WATCH_SSE_SHARE", "0.5"))  # the share of watchers on SSE
        followers = [Follower(stream=(i % 100) < sse * 100) for i in range(watchers)]
        loop = asyncio.new_event_loop()
        until = time.monotonic() + 240
        query = f"prefix={prefix}"

        async def follow_all() -> list[BaseException | None]:
            tasks = []
            for f in followers:
                run = _events if f.stream else _long_poll
                tasks.append(run(f, server.port, query, key, since0, total, until))
                await asyncio.sleep(0)
            return await asyncio.gather(*tasks, return_exceptions=True)

        outcome: list[list[BaseException | None]] = []
        client = threading.Thread(target=lambda: outcome.append(loop.run_until_complete(follow_all())))
        opened = time.monotonic()
        client.start()
        parked = 0
        while parked < watchers and time.monotonic() - opened < 180:
            time.sleep(0.25)
            parked = json.loads(fetch(f"{server.base}/watchz")[1])["held"]
        parked_s = time.monotonic() - opened
        held = server.usage()
        committed: dict[int, float] = {}
        lock = threading.Lock()

        def writer(w: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", ctx.server.port, timeout=30)
            try:
                for n in range(WRITES):
                    conn.request(
                        "PUT", f"/api/kv/keys/{prefix}{w}", body=json.dumps({"value": n}), headers=headers
                    )
                    answer = json.loads(conn.getresponse().read())
                    with lock:
                        committed[answer["revision"]] = time.perf_counter()
            finally:
                conn.close()

        started, client_cpu = time.monotonic(), time.process_time()
        writers = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        write_s = time.monotonic() - started
        client.join(300)
        delivered_s = time.monotonic() - started
        client_cpu = time.process_time() - client_cpu
        after = server.usage()
    finally:
        server.stop()
    errors = [repr(e) for e in (outcome[0] if outcome else []) if e is not None]
    expected = sorted(committed)
    lost = reordered = complete = 0
    by_kind: dict[bool, list[float]] = {True: [], False: []}
    for f in followers:
        revs = [r for r, _ in f.got]
        reordered += sum(1 for a, b in itertools.pairwise(revs) if b <= a)
        lost += len(set(expected) - set(revs))
        complete += revs == expected
        by_kind[f.stream] += [(at - committed[r]) * 1000 for r, at in f.got if r in committed]
    latencies = sorted(by_kind[True] + by_kind[False])

    def pct(p: float, values: list[float] = latencies) -> float | None:
        return round(values[min(len(values) - 1, int(len(values) * p))], 1) if values else None

    def kind(values: list[float]) -> dict[str, float | None]:
        values.sort()
        return {"p50": pct(0.5, values), "p99": pct(0.99, values)}

    return {
        "watchers": watchers,
        "long_poll": sum(not f.stream for f in followers),
        "sse": sum(f.stream for f in followers),
        "held_by_server_before_writes": parked,
        "seconds_to_park_all": round(parked_s, 1),
        "writes": total,
        "writes_per_s": round(total / write_s, 1),
        "all_delivered_after_s": round(delivered_s, 1),
        "watchers_complete": complete,
        "lost": lost,
        "reordered": reordered,
        "client_errors": errors[:5],
        "deliveries": len(latencies),
        "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)},
        "latency_ms_sse": kind(by_kind[True]),
        "latency_ms_long_poll": kind(by_kind[False]),
        "long_poll_requests": sum(f.requests for f in followers if not f.stream),
        "sse_reconnects": sum(f.reconnects for f in followers if f.stream),
        "watch_server": {
            "idle": idle,
            "parked": held,
            "end": after,
            "rss_kib_per_watcher": round((held["rss_kib"] - idle["rss_kib"]) / watchers, 1),
            "cpu_s_during_writes_and_delivery": round(after["cpu_s"] - held["cpu_s"], 2),
        },
        # The benchmark process (16 writers + every watcher's parsing, one asyncio loop) in the same interval.
        "client_cpu_s_during_writes_and_delivery": round(client_cpu, 2),
    }


def watch_many(ctx: Context) -> dict[str, Any]:
    key = _demo_key(ctx)
    levels = [int(n) for n in os.environ.get("BENCH_WATCHERS", "1000").split(",")]
    results = [_level(ctx, key, n) for n in levels]
    bad = [r for r in results if r["lost"] or r["reordered"] or r["watchers_complete"] != r["watchers"]]
    _plot(results)
    first = results[0]
    out = {
        "app": {
            "rps": first["writes_per_s"],
            "p50_ms": first["latency_ms"]["p50"],
            "p99_ms": first["latency_ms"]["p99"],
        },
        "levels": results,
        "unit": "writes/s while watched; latency = PUT answered -> change received by a watcher",
        "note": (
            "one watch server process (granian ASGI, 1 worker); watchers and writers run in the benchmark "
            "process on the same 2-core host, so client-side parsing is inside the latency"
        ),
    }
    if bad:
        raise AssertionError(f"watch lost, reordered or missed changes: {json.dumps(bad)[:2000]}")
    return out


def _plot(results: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, mem) = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = [str(r["watchers"]) for r in results]
    width = 0.25
    for i, p in enumerate(("p50", "p90", "p99")):
        xs = [j + (i - 1) * width for j in range(len(results))]
        lat.bar(xs, [r["latency_ms"][p] or 0 for r in results], width, label=p)
    lat.set_xticks(range(len(results)), labels)
    lat.set_ylabel("delivery latency after the PUT's answer (ms)")
    lat.legend()
    lat.set_xlabel("concurrent watchers on one watch server (half SSE, half long-poll)")
    mem.bar(labels, [r["watch_server"]["parked"]["rss_kib"] / 1024 for r in results], color="#4a7")
    for j, r in enumerate(results):
        mem.annotate(f"{r['watch_server']['parked']['threads']} threads", (j, 0), ha="center", va="bottom")
    mem.set_ylabel("watch server RSS with every watcher parked (MiB)")
    mem.set_xlabel("concurrent watchers")
    fig.suptitle(
        "kvstore_watch_1000: 16 writers x 20 PUTs; 0 lost / 0 reordered per watcher (checked)", fontsize=10
    )
    save_figure(fig, "kvstore_watch_1000-levels.png")


SCENARIOS = [
    Scenario(
        "kvstore_watch_1000",
        "1,000+ watchers (half SSE, half long-poll) on one watch server, 16 writers x 20 PUTs: 0 lost/reordered, "
        "latency, RSS, threads",
        watch_many,
        needs=("postgres", "redis"),
        app="kvstore",
        rounds="once",
    ),
]
