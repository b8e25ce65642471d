"""How close to the hot key can a random-key KV GET get, with Redis in front of PostgreSQL? The ceiling over Bazaar's.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/kv_get_floor.py [--rounds 3] [--duration 8]

Issue 21 asks for the random-key GET at 1M keys at ≥ 0.5× the hot-key GET. A random key at 1M keys is a cache miss
(one more round trip, to PostgreSQL); the hot key is a hit. This measures, at 1,000,000 stored keys, 16 clients,
in one sitting, the sides alternating round by round (ABBA), each side's hot-key GET and random-key GET:

* ``bazaar``: the production server (granian 2 × 4, the WSGI fast path), as ``kvstore_scale_vs_etcd``;
* ``bare_wsgi`` and ``bare_asgi``: the least a Python server can do for the same answers
  (``bench/kv_get_floor_app.py``: no framework, the same round trips with the same client libraries), on
  Bazaar's server shape (granian WSGI 2 × 4 threads) and on one event loop per worker (granian ASGI, 2 workers);
* ``pg_select``: PostgreSQL alone running the miss's statement for random keys from ``pgbench`` (a C client, 8
  connections): the statement's own cost, without a Python server around it.

For each run it also reads the CPU time each part of the system spent per request from ``/proc`` (the server's
processes, PostgreSQL's, Redis's, wrk's, and the whole host's busy time), so the JSON says where a miss costs
more than a hit. If the bare servers' random / hot stays under 0.5, no Python server making these round trips
reaches it on this host, and the distance between them and ``bazaar`` is Bazaar's own. Results:
``bench/results/kv_get_floor.json`` and ``.png``. Loads go to 127.0.0.1 only and stop by themselves.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    HostMonitor,
    Server,
    host_state,
    save,
    save_figure,
    stop_group,
    wrk,
)
from bench.kv_put_floor import floor_server, floor_setup, granian_command, pgbench
from bench.scenarios.kv_scale import (
    _LUA_COUNT_MISSES,
    CLIENTS,
    KEY_FORMAT,
    _lua,
)

KEYS = 1_000_000
HOT = KEY_FORMAT % 7
SIDES = ("bazaar", "bare_wsgi", "bare_asgi", "pg_select")
TICK = os.sysconf("SC_CLK_TCK")


def _bare(interface: str, tenant_id: int) -> tuple[subprocess.Popen[bytes], str]:
    """A bare floor server (``kv_get_floor_app``) on a free port, shaped like Bazaar's: 2 workers (× 4 threads)."""
    return floor_server(
        lambda port: granian_command(
            interface, f"bench.kv_get_floor_app:{interface}", port, threads=4 if interface == "wsgi" else 0
        ),
        {"KV_FLOOR_TENANT": str(tenant_id)},
    )


def _ticks_by_part(group: int | None) -> dict[str, int]:
    """CPU ticks so far of the processes in session ``group`` (a server), PostgreSQL's and Redis's.

    PostgreSQL's include its exited backends' (the postmaster's reaped children): a server closing a connection
    (``CONN_MAX_AGE``) mid-run must not take that backend's CPU out of the sum."""
    out = {"server": 0, "postgres": 0, "redis": 0}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])
        if name.startswith("postgres"):  # with the backends that exited meanwhile, reaped by the postmaster
            ticks += int(fields[13]) + int(fields[14])
        if group is not None and int(fields[3]) == group:  # field 6 of stat: the session id
            out["server"] += ticks
        elif name.startswith("postgres"):
            out["postgres"] += ticks
        elif name.startswith("redis-server"):
            out["redis"] += ticks
    return out


def _host_ticks() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


def _measured(group: int | None, run: Any) -> tuple[dict[str, Any], int]:
    """``run()``'s result and the CPU µs per request each part spent (``run`` returns (result, requests))."""
    before, (busy0, _), kids0 = _ticks_by_part(group), _host_ticks(), os.times()
    out, requests = run()
    after, (busy1, _), kids1 = _ticks_by_part(group), _host_ticks(), os.times()
    per = 1e6 / TICK / max(requests, 1)
    cpu = {k: round((after[k] - before[k]) * per, 1) for k in after}
    client = (kids1.children_user + kids1.children_system) - (kids0.children_user + kids0.children_system)
    cpu["client"] = round(client * 1e6 / max(requests, 1), 1)
    cpu["host_busy"] = round((busy1 - busy0) * per, 1)
    out["cpu_us_per_request"] = cpu
    return out, requests


def _wrk_run(base: str, script: str, duration: int) -> Any:
    def run() -> tuple[dict[str, Any], int]:
        out = wrk(base + "/", duration=duration, connections=CLIENTS, script=script)
        raw = out.pop("raw", "")
        m = re.search(r"MISSES (\d+)", raw)
        out["cache_misses"] = int(m.group(1)) if m else None
        return out, int(out["requests"])

    return run


def _store_hot(bazaar: str, api_key: str) -> None:
    """Read the hot key from Bazaar twice (a cold key is stored on its second miss), so every side finds it cached."""
    for _ in range(2):
        req = urllib.request.Request(
            bazaar + "/api/kv/keys/" + HOT, headers={"Authorization": f"Bearer {api_key}"}
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()


def _scripts(api_key: str) -> dict[str, str]:
    """wrk scripts: the hot key, and uniformly random keys (both count ``X-Cache: miss`` answers)."""
    hot = (
        f'local headers = {{["Authorization"] = "Bearer {api_key}"}}\n'
        f'request = function() return wrk.format("GET", "/api/kv/keys/{HOT}", headers) end\n'
        + _LUA_COUNT_MISSES
    )
    paths = {}
    for kind, text in (("hot", hot), ("random", _lua("bazaar_get", KEYS, api_key))):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(text)
            paths[kind] = f.name
    return paths


def _select_script(tenant_id: int) -> str:
    return (
        f"\\set i random(0, {KEYS - 1})\n"
        'SELECT "key", value, version, mod_revision FROM kvstore_entry '
        f"WHERE tenant_id = {tenant_id} AND \"key\" = 'kvbench/s' || lpad(:i::text, 9, '0') "
        "AND (expires_at IS NULL OR expires_at > now());\n"
    )


def _plot(sides: dict[str, dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in SIDES if n != "pg_select"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.38
    xs = range(len(names))
    left.bar(
        [x - width / 2 for x in xs], [sides[n]["hot"]["rps"] for n in names], width, label="hot key (hit)"
    )
    left.bar(
        [x + width / 2 for x in xs],
        [sides[n]["random"]["rps"] for n in names],
        width,
        label="random key (miss)",
    )
    left.set_xticks(list(xs), names)
    left.set_ylabel("requests/s (median of rounds)")
    left.set_title("KV GET at 1M keys, 16 clients")
    left.legend()
    right.bar(list(xs), [sides[n]["random_over_hot"] or 0 for n in names], color="tab:gray")
    right.axhline(0.5, color="tab:red", linestyle="--", label="issue 21: 0.5")
    right.set_xticks(list(xs), names)
    right.set_ylabel("random / hot (median of paired rounds)")
    right.legend()
    fig.tight_layout()
    return save_figure(fig, "kv_get_floor.png")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    args = parser.parse_args()
    dsn, api_key, tenant_id, before, fill_s = floor_setup(etcd=False, keys=KEYS)
    scripts = _scripts(api_key)
    select = _select_script(tenant_id)
    server = Server(kind="granian", workers=2, threads=4).start()
    bare: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for name in ("bare_wsgi", "bare_asgi"):
            bare[name] = _bare(name.removeprefix("bare_"), tenant_id)
    except BaseException:
        server.stop()
        for proc, _base in bare.values():
            stop_group(proc)
        raise
    bases = {"bazaar": server.base, **{name: base for name, (_p, base) in bare.items()}}
    groups = {"bazaar": server.proc.pid if server.proc else None, **{n: p.pid for n, (p, _b) in bare.items()}}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s: {"hot": [], "random": []} for s in SIDES}
    try:
        _store_hot(server.base, api_key)
        for name in bases:  # connections and prepared statements warm on every side
            for kind in ("hot", "random"):
                wrk(bases[name] + "/", duration=2, connections=CLIENTS, script=scripts[kind])
        with HostMonitor() as monitor:
            for n in range(args.rounds):
                order = list(SIDES) if n % 2 == 0 else list(reversed(SIDES))  # ABBA
                for name in order:
                    if name == "pg_select":

                        def run_pg() -> tuple[dict[str, Any], int]:
                            out = pgbench(dsn, select, connections=8, duration=args.duration)
                            return out, int(out["statements_per_s"] * args.duration)

                        out, _ = _measured(None, run_pg)
                        out["rps"] = out["statements_per_s"]
                        runs[name]["random"].append(out)
                        print(f"   round {n + 1} {name:9} {out['rps']:>9,.0f} statements/s", flush=True)
                        continue
                    for kind in ("hot", "random"):
                        if kind == "hot":
                            _store_hot(server.base, api_key)
                        out, _ = _measured(groups[name], _wrk_run(bases[name], scripts[kind], args.duration))
                        runs[name][kind].append(out)
                        print(
                            f"   round {n + 1} {name:9} {kind:6} {out['rps']:>9,.0f} req/s, "
                            f"{out['cpu_us_per_request']}",
                            flush=True,
                        )
    finally:
        server.stop()
        for proc, _base in bare.values():
            stop_group(proc)
        for script in scripts.values():
            os.unlink(script)
    sides: dict[str, dict[str, Any]] = {}
    for name, kinds in runs.items():
        side: dict[str, Any] = {}
        for kind, outs in kinds.items():
            if not outs:
                continue
            rps = [o["rps"] if not o.get("non_2xx") and not o.get("socket_errors") else 0.0 for o in outs]
            cpu_parts = outs[0]["cpu_us_per_request"].keys()
            side[kind] = {
                "rps": round(statistics.median(rps), 1),
                "spread": [min(rps), max(rps)],
                "rounds": rps,
                "cpu_us_per_request": {
                    p: round(statistics.median(o["cpu_us_per_request"][p] for o in outs), 1)
                    for p in cpu_parts
                },
                "cache_misses": [o.get("cache_misses") for o in outs],
                "p99_ms": [o.get("p99_ms") for o in outs],
            }
        if "hot" in side:
            ratios = [
                r / h for r, h in zip(side["random"]["rounds"], side["hot"]["rounds"], strict=True) if h
            ]
            side["random_over_hot"] = round(statistics.median(ratios), 3) if ratios else None
            side["random_over_hot_rounds"] = [round(r, 3) for r in ratios]
        sides[name] = side
    payload = {
        "what": "KV GET at 1,000,000 keys, 16 clients: the hot key (a hit) and random keys (misses), Bazaar next to "
        "the least a Python server can do for the same round trips, and PostgreSQL alone (the miss's statement)",
        "keys": KEYS,
        "clients": CLIENTS,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "fill_s": fill_s,
        "sides": sides,
        "host": host_state(before, monitor.summary()),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = save("kv_get_floor", payload)
    _plot(sides)
    for name, side in sides.items():
        hot = side.get("hot", {}).get("rps")
        print(f"{name:9} hot {hot}  random {side['random']['rps']}  random/hot {side.get('random_over_hot')}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
