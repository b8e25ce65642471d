"""The capacity model's measurements (issue #20): CPU per request per component, and the scale-out curve.

    python bench/capacity.py measure [--rounds 2] [--duration 8]     CPU per request, each scenario and the mix
    python bench/capacity.py curve [--counts 1,2,4,4,2,1] [--duration 15]   make stack with 1, 2, 4 app servers
    python bench/capacity.py --report                                  docs/capacity.md + plots from the results

``measure`` starts its own PostgreSQL cluster (initdb on a free port), its own redis-server and one production app
server (granian, 2 workers x 4 threads) on 127.0.0.1, so every process of each component is ours and its CPU can be
read from /proc/<pid>/stat (utime + stime, plus the reaped children's cutime + cstime: a PostgreSQL backend that
exits hands its time to the postmaster). Each scenario of bench/capacity_mix.lua (or the mix) is driven by wrk for
``--duration`` seconds after a short warm-up; CPU before and after, divided by the requests answered, is the
figure. wrk's own CPU (this process's reaped children) and the host's total from /proc/stat are recorded too, so
the figures can be checked to add up: the rest is the other work on this shared host.

``curve`` brings up ``deploy/stack.py`` once with 4 app servers (1 worker x 4 threads each), its own PostgreSQL
primary + streaming replica, PgBouncer, Redis primary + replica + Sentinels and nginx, on ports of its own, and
points nginx at the first 1, 2 or 4 of them (a reload between points; the idle servers' CPU is still counted).
The edge cache is off, so every request of the mix reaches an app server. Results: bench/results/capacity_cpu.json
and capacity_curve.json (+ .png); ``--report`` (bench/capacity_model.py) writes docs/capacity.md from them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))

import ha  # deploy/ha.py: PostgreSQL clusters and the stack's Redis

from bench import capacity_model as model
from bench.harness import (
    PY,
    ROOT,
    HostMonitor,
    Server,
    _ms,
    bench_env,
    ensure_tools,
    free_port,
    host_sample,
    host_state,
    manage,
    setup,
    stop_group,
)

LUA = ROOT / "bench" / "capacity_mix.lua"
CLK = os.sysconf("SC_CLK_TCK")
CONNECTIONS = 16
# Every load that rents gets customers of its own (a customer rents 9 times at most, 2.00 each: the 20.00 limit),
# and each cut-off run may leave one open rental per connection: hence many customers and copies.
RENTAL_CUSTOMERS, CUSTOMERS_PER_LOAD, RENTAL_COPIES = 15000, 600, 128
SEARCHES = ("a", "e", "i", "o")  # the store search that renders the most products is the "uncached page"


# --- CPU accounting ---------------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, CPU ticks incl. reaped children) of a live process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2 :].split()
    return int(rest[1]), sum(int(x) for x in rest[11:15])  # utime stime cutime cstime


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds used so far by the processes under ``roots`` (each root and its live descendants; a child
    that exited and was reaped is in its parent's cutime + cstime)."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st:
                parent[int(name)], ticks[int(name)] = st
    wanted = set(roots)
    total = 0
    for pid in ticks:
        p, hops = pid, 0
        while p and p not in wanted and hops < 64:
            p, hops = parent.get(p, 0), hops + 1
        if p in wanted:
            total += ticks[pid]
    return total / CLK


def host_busy_s() -> float:
    """CPU seconds the whole host has been busy (all CPUs, every process of every user; iowait counts as idle)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / CLK


def loadgen_s() -> float:
    """CPU seconds of this process's reaped children: wrk, after each run."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def snapshot(components: dict[str, list[int]]) -> dict[str, float]:
    out = {name: tree_cpu(pids) for name, pids in components.items()}
    out["loadgen"] = loadgen_s()
    out["host"] = host_busy_s()
    out["wall"] = time.monotonic()
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per component over the window; ``other`` is the host's busy time nobody of ours used."""
    d = {k: round(after[k] - before[k], 3) for k in before}
    ours = sum(v for k, v in d.items() if k not in ("host", "wall"))
    d["other"] = round(d["host"] - ours, 3)
    return d


# --- counters of the stateful services ------------------------------------------------------------------------


def pg_counters(port: int, db: str) -> dict[str, float]:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/{db}", autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, tup_fetched, tup_inserted + tup_updated + tup_deleted "
            "FROM pg_stat_database WHERE datname = %s",
            [db],
        ).fetchone()
        wal = conn.execute("SELECT wal_bytes FROM pg_stat_wal").fetchone()
        # The next transaction id, read without taking one: how many transactions wrote (each such commit waits
        # for its WAL to reach the disk; read-only ones, counted in xact_commit too, do not).
        xid = conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint").fetchone()
    assert row is not None
    assert wal is not None
    assert xid is not None
    return {
        "write_xacts": xid[0],
        "commits": row[0],
        "rollbacks": row[1],
        "rows_fetched": row[2],
        "rows_written": row[3],
        "wal_bytes": float(wal[0]),
    }


def redis_commands(port: int) -> int:
    out = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "INFO", "stats"], capture_output=True, text=True
    ).stdout
    m = re.search(r"total_commands_processed:(\d+)", out)
    return int(m.group(1)) if m else 0


def fsync_probe(directory: Path) -> dict[str, float]:
    """How many times a second this disk completes one 8 kB write + flush (pg_test_fsync, on the cluster's disk):
    the rate of WAL flushes a primary gets when commits do not share one."""
    r = subprocess.run(
        [ha._pg_bin("pg_test_fsync"), "-s", "2", "-f", str(directory / "fsync.probe")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    (directory / "fsync.probe").unlink(missing_ok=True)
    found: dict[str, float] = {}
    for method in ("open_datasync", "fdatasync"):
        m = re.search(rf"^\s+{method}\s+([\d.]+) ops/sec", r.stdout, re.M)  # the first table: one 8 kB write
        if m:
            found[f"{method}_per_s"] = float(m.group(1))
    return found


# --- the load -----------------------------------------------------------------------------------------------------


def drive(
    base: str, fixture: dict[str, Any], weights: dict[str, int], duration: int, connections: int
) -> dict[str, Any]:
    """wrk with bench/capacity_mix.lua, one connection per thread, for ``duration`` seconds."""
    assert base.startswith("http://127.0.0.1:"), "loads go only to 127.0.0.1"
    mix = ",".join(f"{k}={v}" for k, v in weights.items() if v)
    customers = fixture["customers"][:connections]
    if weights.get("rental"):  # fresh customers for every load that rents: each may owe at most 20.00
        start = fixture["next_customer"]
        customers = fixture["customers"][start : start + CUSTOMERS_PER_LOAD]
        fixture["next_customer"] = start + CUSTOMERS_PER_LOAD
        if len(customers) < CUSTOMERS_PER_LOAD:
            raise RuntimeError("out of rental customers: raise RENTAL_CUSTOMERS")
    cmd = [
        "wrk", "-t", str(connections), "-c", str(connections), "-d", f"{duration}s", "--latency",
        "--timeout", "10s", "-s", str(LUA), base + "/",
        "--", fixture["kv_key"], fixture["token"], fixture["order_path"], str(fixture["product"]),
        fixture["search"], ",".join(map(str, fixture["titles"])), ",".join(map(str, customers)),
        mix, str(connections),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120).stdout
    m = re.search(r"RESULT (\{.*\})", out)
    if m is None:
        raise RuntimeError(f"wrk gave no result:\n{out}")
    kinds = {k: {"answered": v[0], "bad": v[1]} for k, v in json.loads(m.group(1)).items() if v[0]}
    result: dict[str, Any] = {"kinds": kinds, "requests": sum(k["answered"] for k in kinds.values())}
    result["bad"] = sum(k["bad"] for k in kinds.values())
    bad = re.search(r"^FIRST_BAD (.*)$", out, re.M)
    if bad:
        result["first_bad"] = bad.group(1)[:200]
    for pct in ("50", "99"):
        lm = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        result[f"p{pct}_ms"] = _ms(lm.group(1)) if lm else float("nan")
    return result


def measured(
    base: str,
    fixture: dict[str, Any],
    weights: dict[str, int],
    *,
    duration: int,
    components: dict[str, list[int]],
    pg: tuple[int, str],
    redis_port: int,
    connections: int = CONNECTIONS,
) -> dict[str, Any]:
    """One measured load: warm-up (2 s, not counted), then CPU, PostgreSQL and Redis counters around the run."""
    drive(base, fixture, weights, 2, connections)
    idle = host_sample(1.0)
    pg0, r0 = pg_counters(*pg), redis_commands(redis_port)
    with HostMonitor() as monitor:
        before = snapshot(components)
        load = drive(base, fixture, weights, duration, connections)
        after = snapshot(components)
    pg1, r1 = pg_counters(*pg), redis_commands(redis_port)
    cpu = cpu_delta(before, after)
    n = max(1, load["requests"])
    return {
        **load,
        "seconds": round(cpu.pop("wall"), 2),
        "rps": round(load["requests"] / (after["wall"] - before["wall"]), 1),
        "cpu_s": cpu,
        "cpu_ms_per_request": {k: round(1000 * v / n, 4) for k, v in cpu.items()},
        "per_request": {
            **{k: round((pg1[k] - pg0[k]) / n, 4) for k in pg0},
            "redis_commands": round((r1 - r0) / n, 3),
        },
        "host": host_state(idle, monitor.summary()),
    }


def fixture_for(env: dict[str, str], base: str) -> dict[str, Any]:
    """Demo data, the bench shop, rental customers, a staff token; the store search rendering the most
    products stands for the uncached store page."""
    from bench.harness import fetch

    demo = manage("demo", env=env)
    kv = re.search(r"API key\s+(kv_\S+)", demo)
    assert kv is not None, demo
    shop = json.loads(setup("storefront-shop", env=env).strip().splitlines()[-1])
    rentals = json.loads(
        setup(
            "rentals-setup",
            "--customers",
            str(RENTAL_CUSTOMERS),
            "--titles",
            "8",
            "--copies",
            str(RENTAL_COPIES),
            env=env,
        )
    )
    token = manage("token", "create", "desk", "--name", f"capacity-{uuid.uuid4().hex[:6]}", env=env).strip()
    plain = fetch(base + "/s/demo-shop/")[1].count(b"data-product=")
    counted = {q: fetch(f"{base}/s/demo-shop/?q={q}")[1].count(b"data-product=") for q in SEARCHES}
    search = max(counted, key=lambda q: counted[q])
    return {
        "kv_key": kv.group(1),
        "token": token,
        "order_path": f"/api/storefront/stores/{shop['slug']}/orders",
        "product": shop["bulk"],
        "search": search,
        "products_on_page": {"plain": plain, f"q={search}": counted[search]},
        "titles": rentals["titles"],
        "customers": rentals["customers"],
        "next_customer": 0,
    }


# --- measure: CPU per request per scenario --------------------------------------------------------------------


def cmd_measure(args: argparse.Namespace) -> None:
    ensure_tools()
    state = Path(tempfile.mkdtemp(prefix="bazaar-capacity-"))
    state.chmod(0o755)  # the cluster runs as the postgres user
    pg_port, redis_port, db = free_port(), free_port(), "bazaar_capacity"
    redis: subprocess.Popen[bytes] | None = None
    server: Server | None = None
    sittings: list[dict[str, Any]] = []
    fsync: dict[str, float] = {}
    try:
        fsync = fsync_probe(state)
        ha.pg_primary(state / "pg", pg_port)
        subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", db], check=True)
        redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(state)],
            stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        ha.wait_for(lambda: redis_commands(redis_port) > 0, "redis-server")
        extra = {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/{db}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "CELERY_BROKER_URL": "",
            "CELERY_BROKER_SENTINEL_URL": "",
            "DATABASE_REPLICA_URL": "",
            "EDGE_PURGE_URL": "",
            "EMAIL_URL": "dummymail://",  # the vendor's order e-mail is built and sent (to nowhere) in the request
            "BAZAAR_CACHE_PREFIX": f"capacity-{uuid.uuid4().hex[:6]}",
        }
        env = bench_env(extra)
        print("preparing the database (migrate, static, demo data) ...", flush=True)
        manage("migrate", "--noinput", "-v", "0", env=env)
        manage("collectstatic", "--noinput", "-v", "0", env=env)
        server = Server(workers=args.workers, threads=args.threads, env=extra).start()
        fixture = fixture_for(env, server.base)
        assert server.proc is not None
        assert redis is not None
        postmaster = int((state / "pg" / "data" / "postmaster.pid").read_text().split()[0])
        components = {"app": [server.proc.pid], "postgres": [postmaster], "redis": [redis.pid]}
        plan = [(k, {k: 1}) for k in model.KINDS] + [("mix", dict(model.MIX))]
        for rnd in range(args.rounds):
            for name, weights in plan if rnd % 2 == 0 else plan[::-1]:
                out = measured(
                    server.base, fixture, weights, duration=args.duration, components=components,
                    pg=(pg_port, db), redis_port=redis_port,
                )  # fmt: skip
                out.update({"scenario": name, "round": rnd + 1})
                sittings.append(out)
                c = out["cpu_ms_per_request"]
                print(
                    f"{name:15s} r{rnd + 1} {out['rps']:7.0f} req/s  ms CPU/req app {c['app']:.3f} pg "
                    f"{c['postgres']:.3f} redis {c['redis']:.3f} wrk {c['loadgen']:.3f} other {c['other']:.3f}"
                    f"  bad {out['bad']}" + ("  [noisy]" if out["host"]["noisy"] else ""),
                    flush=True,
                )
    finally:
        if server:
            server.stop()
        stop_group(redis)
        ha.pg_stop(state / "pg")
        shutil.rmtree(state, ignore_errors=True)
    payload = {
        "what": "CPU per request per component (bench/capacity.py measure)",
        "command": " ".join(["python", "bench/capacity.py", *sys.argv[1:]]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "setup": {
            "app": f"granian {args.workers} workers x {args.threads} threads (deploy/serve.py), direct, no nginx",
            "postgres": "own cluster (initdb), defaults: fsync on, synchronous_commit on, shared_buffers 128MB",
            "redis": "own redis-server, no persistence",
            "load": f"wrk, {CONNECTIONS} connections (one per thread), {args.duration} s after a 2 s warm-up",
            "cpus": os.cpu_count(),
            "clk_tck": CLK,
        },
        "fixture": {k: v for k, v in fixture.items() if k in ("search", "products_on_page")},
        "mix": model.MIX,
        "fsync": fsync,
        "sittings": sittings,
    }
    path = model.RESULTS / "capacity_cpu.json"
    path.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


# --- curve: make stack with 1, 2 and 4 app servers ------------------------------------------------------------

STACK_ENV = {
    "STACK_STATE": str(ROOT / "var" / "capacity-stack"),
    "STACK_APPS": "4",
    "STACK_APP_PORTS": "18501",
    "STACK_PORT": "18580",
    "STACK_PURGE_PORT": "18590",
    "STACK_DB": "bazaar_capacity_stack",
    "STACK_REDIS_PORTS": "18679,18680",
    "STACK_SENTINEL_PORTS": "18779,18780,18781",
    "STACK_PGBOUNCER_PORT": "18632",
    "STACK_PG_REPLICA": "1",
    "STACK_PG_PORTS": "18540,18541",
}


def _pid_file(path: Path) -> list[int]:
    return [int(path.read_text().split()[0])] if path.exists() else []


def cmd_curve(args: argparse.Namespace) -> None:
    ensure_tools()
    os.environ.update(STACK_ENV)
    import stack  # deploy/stack.py, configured by the environment above

    state = Path(STACK_ENV["STACK_STATE"])
    up = subprocess.run(
        [PY, "deploy/stack.py", "up"], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True
    )
    points: list[dict[str, Any]] = []
    try:
        if up.returncode != 0:
            raise SystemExit(f"stack up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
        pids = json.loads((state / "state.json").read_text())["pids"]
        components = {
            "app": [pid for name, pid in pids.items() if re.fullmatch(r"app[a-z]", name)],
            "postgres": _pid_file(state / "pg-primary" / "data" / "postmaster.pid"),
            "pg_replica": _pid_file(state / "pg-replica" / "data" / "postmaster.pid"),
            "pgbouncer": [pids["pgbouncer"]],
            "redis": [pid for name, pid in pids.items() if name.startswith(("redis", "sentinel"))],
            "nginx": _pid_file(state / "nginx.pid"),
            "celery": [pids["worker"], pids["beat"]],
        }
        env = {**stack.stack_env(), "LOG_LEVEL": "ERROR"}
        base = f"http://127.0.0.1:{stack.NGINX_PORT}"
        fixture = fixture_for(env, base)
        for count in [int(c) for c in args.counts.split(",")]:
            conf = stack.nginx_conf(
                state, port=stack.NGINX_PORT, purge_port=stack.PURGE_PORT, app_ports=stack.APP_PORTS[:count],
                edge=False,
            )  # fmt: skip
            (state / "nginx.conf").write_text(conf)
            subprocess.run(
                ["nginx", "-c", str(state / "nginx.conf"), "-p", str(state), "-s", "reload"], check=True
            )
            time.sleep(2)  # the old workers finish; the new ones take the port
            out = measured(
                base, fixture, dict(model.MIX), duration=args.duration, components=components,
                pg=(stack.PG_PORT, stack.DB_NAME), redis_port=stack.REDIS_PORTS[0], connections=args.connections,
            )  # fmt: skip
            out["app_servers"] = count
            points.append(out)
            c = out["cpu_ms_per_request"]
            print(
                f"{count} app servers: {out['rps']:7.0f} req/s p99 {out['p99_ms']:.1f} ms  CPU ms/req "
                + " ".join(f"{k} {v:.3f}" for k, v in c.items() if k != "host")
                + f"  bad {out['bad']}"
                + ("  [noisy]" if out["host"]["noisy"] else ""),
                flush=True,
            )
    finally:
        subprocess.run([PY, "deploy/stack.py", "down"], cwd=ROOT, env=dict(os.environ), capture_output=True)
    payload = {
        "what": "the mix through nginx (edge cache off) to 1, 2 and 4 app servers of deploy/stack.py",
        "command": " ".join(["python", "bench/capacity.py", *sys.argv[1:]]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "setup": {
            "app": "deploy/stack.py app servers: granian 1 worker x 4 threads each; 4 started, nginx balances "
            "over the first N (reloaded between points)",
            "postgres": "the stack's own primary + streaming replica (STACK_PG_REPLICA=1), PgBouncer session mode",
            "redis": "the stack's own primary + replica + 3 Sentinels",
            "load": f"wrk, {args.connections} connections (one per thread), {args.duration} s after a 2 s warm-up",
            "cpus": os.cpu_count(),
        },
        "mix": model.MIX,
        "points": points,
    }
    path = model.RESULTS / "capacity_curve.json"
    path.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    if "--report" in sys.argv[1:]:
        model.write_report()
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="CPU per request per component, each scenario and the mix")
    m.add_argument("--rounds", type=int, default=2)
    m.add_argument("--duration", type=int, default=8)
    m.add_argument("--workers", type=int, default=2)
    m.add_argument("--threads", type=int, default=4)
    c = sub.add_parser("curve", help="the mix through make stack with 1, 2 and 4 app servers")
    c.add_argument("--counts", default="1,2,4,4,2,1")
    c.add_argument("--duration", type=int, default=15)
    c.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    {"measure": cmd_measure, "curve": cmd_curve}[args.command](args)


if __name__ == "__main__":
    main()
