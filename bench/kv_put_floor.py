"""How fast could a KV PUT be, with PostgreSQL holding the truth? The floor under Bazaar's PUT, next to etcd.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/kv_put_floor.py [--rounds 3] [--duration 8]

Issue 21 asks for the KV PUT at 16 clients at ≥ 1.0× etcd. This measures, in one sitting and alternating round by
round, at 100,000 stored keys, 16 clients, random existing keys:

* ``bazaar``: the real PUT through the production server (granian 2 × 4, wrk, as ``kvstore_scale_vs_etcd``);
* ``etcd``: etcd's ``/v3/kv/put`` through its JSON gateway (the same wrk client);
* ``pg_gN``: **PostgreSQL alone** running the PUT's own statement (``entries._PUT_GROUP``, the revision bump, the
  upsert and the change row in one statement, prepared, autocommitted) from ``pgbench`` (a C client), with groups
  of N keys per statement on 16 / N connections: N = 1 is a commit per write, N = 4 what the group commit
  gathers today, N = 8 and 16 groups it does not reach. No HTTP, no Python, no Redis: what is left of a PUT if
  the application cost nothing. Writes per second = statements per second × N.

If ``pg_gN`` stays below etcd, no application in front of PostgreSQL can reach etcd on this host; where it is
above, the distance between it and ``bazaar`` is the application's. Results: ``bench/results/kv_put_floor.json``
and ``.png``. Loads go to 127.0.0.1 only and stop by themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    ROOT,
    Etcd,
    HostMonitor,
    Server,
    bench_env,
    ensure_tools,
    free_port,
    host_sample,
    host_state,
    manage,
    save,
    save_figure,
    stop_group,
    wait_http,
    wrk,
)
from bench.scenarios.kv_scale import CLIENTS, VALUE, _fill_bazaar, _fill_etcd, _lua, _tenant_of

KEYS = 100_000
GROUPS = (1, 4, 8, 16)


def _put_group_sql() -> str:
    """The PUT's grouped statement, as the application sends it (placeholders ``%s``)."""
    return manage(
        "shell",
        "--no-imports",
        "-c",
        "from bazaar.kvstore.services.entries import _PUT_GROUP; print(_PUT_GROUP, end='')",
    )


def pgbench_script(statement: str, group: int, tenant_id: int, keys: int) -> str:
    """A pgbench script running ``statement`` for ``group`` distinct random existing keys (one key from each of
    ``group`` equal slices of the key space), bound as the application binds them."""
    value = json.dumps(VALUE, separators=(",", ":")).replace("'", "''")
    width = keys // group
    lines = [f"\\set k{i} random({i * width}, {(i + 1) * width - 1})" for i in range(group)]
    key_list = ", ".join(f"format('kvbench/s%s', lpad((:k{i})::text, 9, '0'))" for i in range(group))
    params = [
        str(group),
        str(tenant_id),
        f"ARRAY[{key_list}]",
        "ARRAY[" + ", ".join([f"'{value}'"] * group) + "]",
        "ARRAY[" + ", ".join(["NULL::timestamptz"] * group) + "]",
        "ARRAY[" + ", ".join(["now()"] * group) + "]",
        "ARRAY[" + ", ".join(str(i + 1) for i in range(group)) + "]",
        str(tenant_id),
        str(group),
        str(tenant_id),
    ]
    pieces = statement.split("%s")
    if len(pieces) != len(params) + 1:
        raise RuntimeError(f"the PUT statement has {len(pieces) - 1} parameters, expected {len(params)}")
    text = pieces[0] + "".join(p + rest for p, rest in zip(params, pieces[1:], strict=True))
    return "\n".join(lines) + "\n" + " ".join(text.split()) + ";\n"


def pgbench(dsn: str, script: str, *, connections: int, duration: int) -> dict[str, Any]:
    url = urlparse(dsn)
    assert url.hostname in ("127.0.0.1", "localhost"), "loads go only to 127.0.0.1"
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        cmd = [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-h",
            url.hostname or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            "-c",
            str(connections),
            "-j",
            str(min(2, connections)),
            "-T",
            str(duration),
            "-f",
            path,
            url.path.lstrip("/"),
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    finally:
        os.unlink(path)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", r.stdout)
    if m is None:
        raise RuntimeError(f"pgbench failed:\n{r.stdout}\n{r.stderr}")
    lat = re.search(r"latency average = ([\d.]+) ms", r.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
    return {
        "statements_per_s": float(m.group(1)),
        "latency_avg_ms": float(lat.group(1)) if lat else None,
        "failed": int(failed.group(1)) if failed else 0,
    }


def _pgbench_binary() -> None:
    import shutil

    if shutil.which("pgbench"):
        return
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))
    if not versions:
        raise SystemExit("pgbench not found (Debian: postgresql-client or the server package)")
    os.environ["PATH"] = f"{versions[-1].parent}:{os.environ['PATH']}"


def _wrk_lua(kind: str, api_key: str, base: str, duration: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_lua(kind, KEYS, api_key))
        script = f.name
    try:
        out = wrk(base + "/", duration=duration, connections=CLIENTS, script=script)
    finally:
        os.unlink(script)
    out.pop("raw", None)
    return out


def _plot(sides: dict[str, dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=110)
    labels = list(sides)
    values = [sides[k]["writes_per_s"] for k in labels]
    spreads = [sides[k]["spread"] for k in labels]
    colors = ["#555555" if k == "etcd" else "#b4461b" if k == "bazaar" else "#d9a441" for k in labels]
    ax.barh(labels, values, color=colors)
    for i, (v, (lo, hi)) in enumerate(zip(values, spreads, strict=True)):
        ax.plot([lo, hi], [i, i], color="black", linewidth=1)
        ax.text(hi, i, f"  {v:,.0f}", va="center", fontsize=9)
    ax.set_xlabel("writes/s (median of rounds, bar = spread)")
    ax.set_title(
        f"KV PUT at {KEYS:,} keys, {CLIENTS} clients: Bazaar, etcd, and PostgreSQL alone (pg_gN: N keys a statement)",
        fontsize=9,
    )
    ax.margins(x=0.2)
    fig.tight_layout()
    return save_figure(fig, "kv_put_floor.png")


def _ticks_by_part(group: int | None) -> dict[str, int]:
    from bench.kv_get_floor import _ticks_by_part as ticks  # that module imports this one

    return ticks(group)


TICK = os.sysconf("SC_CLK_TCK")


def granian_command(interface: str, target: str, port: int, *, threads: int = 0) -> list[str]:
    """granian serving ``target`` on 127.0.0.1:``port`` with 2 workers (× ``threads`` blocking threads for WSGI)."""
    return [
        str(Path(sys.executable).parent / "granian"),
        "--interface",
        interface,
        "--port",
        str(port),
        "--workers",
        "2",
        *(["--blocking-threads", str(threads)] if threads else []),
        "--log-level",
        "warning",
        "--no-ws",
        target,
    ]


def floor_server(
    command: Callable[[int], list[str]], extra: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """A floor server (``command(port)``, in a session of its own) on a free port, answering ``/``."""
    port = free_port()
    env = bench_env({**extra, "PYTHONPATH": str(ROOT)})
    proc = subprocess.Popen(
        command(port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/")
    return proc, base


def _batch_server(kind: str, tenant_id: int, statement: str) -> tuple[subprocess.Popen[bytes], str]:
    """``kv_put_floor_app`` (batched PUTs, one asyncio loop per worker process) on a free port: ``async_batch``
    under granian ASGI (2 workers), ``raw_batch`` on a bare asyncio Protocol (no hand-off between threads; 2
    workers), ``raw_batch1`` the same with one worker, so every writer of the host joins the same batches."""

    def command(port: int) -> list[str]:
        if kind == "async_batch":
            return granian_command("asgi", "bench.kv_put_floor_app:asgi", port)
        return [sys.executable, "-m", "bench.kv_put_floor_app", str(port), "1" if kind.endswith("1") else "2"]

    return floor_server(command, {"KV_FLOOR_TENANT": str(tenant_id), "KV_FLOOR_PUT_SQL": statement})


def floor_setup(*, etcd: bool, keys: int) -> tuple[str, str, int, dict[str, float], float]:
    """The start of a KV floor benchmark (this one and ``kv_get_floor.py``): PostgreSQL and Redis configured, the
    tools installed, the host sampled while idle, the bench database migrated with the demo data and ``keys`` rows
    in the demo tenant. Returns the database URL, the demo's KV API key, its tenant id, the idle host sample and
    the seconds the rows took."""
    dsn = os.environ.get("DATABASE_URL", "")
    if not dsn.startswith("postgres") or not os.environ.get("REDIS_URL"):
        raise SystemExit("needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    ensure_tools(etcd=etcd)
    _pgbench_binary()
    before = host_sample()
    print(f"preparing (migrate, demo, {keys:,} keys) ...", flush=True)
    manage("migrate", "--noinput", "-v", "0")
    found = re.search(r"API key\s+(kv_\S+)", manage("demo"))
    if found is None:
        raise SystemExit("the demo printed no KV API key")
    api_key = str(found.group(1))
    tenant_id = _tenant_of(dsn, api_key)
    return dsn, api_key, tenant_id, before, _fill_bazaar(dsn, tenant_id, keys)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--groups", default=",".join(map(str, GROUPS)))
    parser.add_argument(
        "--async-batch",
        action="store_true",
        help="also measure bench/kv_put_floor_app.py: batched PUTs on one asyncio loop per worker process, "
        "under granian ASGI (async_batch) and on a bare asyncio Protocol (raw_batch; raw_batch1: one process)",
    )
    args = parser.parse_args()
    groups = [int(g) for g in args.groups.split(",")]
    dsn, key, tenant_id, before, fill_s = floor_setup(etcd=True, keys=KEYS)
    fill = {"bazaar_s": fill_s}
    statement = _put_group_sql()
    scripts = {g: pgbench_script(statement, g, tenant_id, KEYS) for g in groups}
    etcd = Etcd().start()
    server = Server(kind="granian", workers=2, threads=4).start()
    # One PUT through Bazaar first: its API key check leaves the key's validity flag in Redis, which the
    # async_batch side reads as Bazaar's fast path does.
    warm = urllib.request.Request(
        f"{server.base}/api/kv/keys/kvbench/warm",
        data=json.dumps({"value": VALUE}).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(warm, timeout=10) as answer:  # 127.0.0.1 only
        answer.read()
    batched = (
        {
            kind: _batch_server(kind, tenant_id, statement)
            for kind in ("async_batch", "raw_batch", "raw_batch1")
        }
        if args.async_batch
        else {}
    )
    sides = ["bazaar", "etcd", *batched, *(f"pg_g{g}" for g in groups)]
    runs: dict[str, list[float]] = {name: [] for name in sides}
    detail: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    try:
        fill["etcd_s"] = _fill_etcd(etcd, 0, KEYS)
        with HostMonitor() as monitor:
            for n in range(args.rounds):
                order = list(runs) if n % 2 == 0 else list(reversed(runs))  # ABBA: no side always goes first
                for name in order:
                    if name == "bazaar" or name in batched or name == "etcd":
                        base, proc = (
                            (server.base, server.proc)
                            if name == "bazaar"
                            else (etcd.base, etcd.proc)
                            if name == "etcd"
                            else (batched[name][1], batched[name][0])
                        )
                        group = proc.pid if proc else None  # each was started in a session of its own
                        ticks0 = _ticks_by_part(group)
                        out = _wrk_lua(
                            "etcd_put" if name == "etcd" else "bazaar_put", key, base, args.duration
                        )
                        ticks1 = _ticks_by_part(group)
                        writes = out["rps"] if not out["non_2xx"] and not out["socket_errors"] else 0.0
                        done = writes * out.get("duration_s", args.duration) or 1.0
                        out["cpu_us_per_write"] = {
                            part: round((ticks1[part] - ticks0[part]) / TICK / done * 1e6, 1)
                            for part in ticks1
                        }
                    else:
                        g = int(name.removeprefix("pg_g"))
                        out = pgbench(
                            dsn, scripts[g], connections=max(1, CLIENTS // g), duration=args.duration
                        )
                        writes = out["statements_per_s"] * g if not out["failed"] else 0.0
                    runs[name].append(round(writes, 1))
                    detail[name].append(out)
                    print(f"   round {n + 1} {name:8} {writes:>9,.0f} writes/s", flush=True)
    finally:
        server.stop()
        etcd.stop()
        for proc, _ in batched.values():
            stop_group(proc)
    result: dict[str, dict[str, Any]] = {}
    for name, figures in runs.items():
        ratios = [f / e for f, e in zip(figures, runs["etcd"], strict=True) if e]
        result[name] = {
            "writes_per_s": round(statistics.median(figures), 1),
            "spread": [min(figures), max(figures)],
            "rounds": figures,
            "ratio_to_etcd": round(statistics.median(ratios), 3) if ratios else None,
            "ratio_rounds": [round(r, 3) for r in ratios],
            "p99_ms": [d.get("p99_ms") for d in detail[name]] if not name.startswith("pg_") else None,
            "cpu_us_per_write": {
                part: statistics.median(d["cpu_us_per_write"][part] for d in detail[name])
                for part in ("server", "postgres", "redis")
            }
            if not name.startswith("pg_")
            else None,
            "latency_avg_ms": [d.get("latency_avg_ms") for d in detail[name]]
            if name.startswith("pg_")
            else None,
        }
    payload = {
        "what": "KV PUT at 100,000 keys, 16 clients: Bazaar, etcd and PostgreSQL alone (the PUT's statement)",
        "keys": KEYS,
        "clients": CLIENTS,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "fill_s": fill,
        "sides": result,
        "host": host_state(before, monitor.summary()),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = save("kv_put_floor", payload)
    _plot(result)
    for name, side in result.items():
        print(
            f"{name:8} {side['writes_per_s']:>9,.0f} writes/s {side['spread']}  ×etcd {side['ratio_to_etcd']}"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
