"""`make bench`: run named scenarios against the real production server on 127.0.0.1, with nginx beside it.

    python bench/run.py [--only PATTERN] [--servers granian,gunicorn] [--workers 2] [--duration 10]

Uses PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set (the bench database is migrated and filled with demo
data first), SQLite and the in-process cache otherwise. Writes bench/results/<scenario>.json and .png.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import scenarios as scenario_pkg
from bench.harness import (
    Context,
    HostMonitor,
    Nginx,
    Scenario,
    Server,
    bench_env,
    drop_cached,
    ensure_tools,
    host_sample,
    host_state,
    manage,
    plot,
    save,
)


def discover() -> list[Scenario]:
    found: list[Scenario] = []
    for mod in pkgutil.iter_modules(scenario_pkg.__path__):
        module = importlib.import_module(f"bench.scenarios.{mod.name}")
        found.extend(getattr(module, "SCENARIOS", []))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="*", help="glob over scenario names (comma-separated)")
    parser.add_argument("--servers", default=os.environ.get("BENCH_SERVERS", "granian"))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "2")))
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("BENCH_THREADS", "4")),  # deploy/serve.py's production default
        help="threads per worker process (more overlap database round trips)",
    )
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "10")))
    parser.add_argument(
        "--rounds",
        type=int,
        default=int(os.environ.get("BENCH_ROUNDS", "3")),
        help="alternating rounds per side (app, reference, ...) or repeats of a scenario without a reference",
    )
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()

    all_scenarios = discover()
    patterns = args.only.split(",")
    chosen = [s for s in all_scenarios if any(fnmatch.fnmatch(s.name, p) for p in patterns)]
    if args.list:
        for s in all_scenarios:
            print(f"{s.name:32} {s.description}")
        return
    env = bench_env()
    backends = {
        "postgres": "postgres" in env.get("DATABASE_URL", ""),
        "redis": bool(env.get("REDIS_URL")),
    }
    runnable = [s for s in chosen if all(backends.get(n, False) for n in s.needs)]
    for s in chosen:
        if s not in runnable:
            print(f"skip {s.name}: needs {', '.join(s.needs)}")
    if not runnable:
        print("nothing to run")
        return
    ensure_tools()
    print("preparing the bench database (migrate, static, demo data) ...", flush=True)
    manage("migrate", "--noinput", "-v", "0")
    manage("collectstatic", "--noinput", "-v", "0")
    manage("demo")
    if backends["redis"]:
        print(f"dropped {drop_cached(env):,} cached keys of the bench's namespace (a cold start)", flush=True)
    nginx = Nginx().start()
    results: dict[str, dict[str, Any]] = {s.name: {} for s in runnable}
    try:
        for kind in args.servers.split(","):
            server = Server(kind=kind, workers=args.workers, threads=args.threads).start()
            try:
                ctx = Context(server=server, nginx=nginx, duration=args.duration, env={}, rounds=args.rounds)
                for s in runnable:
                    print(f"== {s.name} on {kind} x{args.workers} ...", flush=True)
                    out = run_scenario(s, ctx)
                    results[s.name][f"{kind}x{args.workers}"] = out
                    app = out.get("app", {})
                    ratio = out.get("ratio_to_nginx")
                    spread = out.get("ratio_spread") or out.get("spread") or []
                    print(
                        f"   app {app.get('rps', 0):,.0f} req/s p50 {app.get('p50_ms')} ms p99 {app.get('p99_ms')} ms"
                        + (f"; nginx {out['nginx']['rps']:,.0f} req/s; ratio {ratio}" if ratio else "")
                        + (f" (spread {spread[0]}-{spread[1]}, {out.get('rounds')} rounds)" if spread else "")
                        + (
                            "  [noisy host: " + "; ".join(out["host"]["why"]) + "]"
                            if out["host"]["noisy"]
                            else ""
                        ),
                        flush=True,
                    )
            finally:
                server.stop()
    finally:
        nginx.stop()

    meta = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "database": "postgresql" if backends["postgres"] else "sqlite",
        "cache": "redis" if backends["redis"] else "locmem",
        "workers": args.workers,
        "threads": args.threads,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
    }
    for s in runnable:
        per_server = results[s.name]
        save(s.name, {"scenario": s.name, "description": s.description, "meta": meta, "results": per_server})
        bars: dict[str, float] = {}
        for label, out in per_server.items():
            if "app" in out:
                bars[f"{s.app} on {label}"] = out["app"]["rps"]
            for extra_label, value in out.get("bars", {}).items():
                bars[f"{extra_label} ({label})"] = value
        nginx_rps = [out["nginx"]["rps"] for out in per_server.values() if "nginx" in out]
        if nginx_rps:
            bars["nginx static, same bytes"] = max(nginx_rps)
        if bars:
            plot(
                s.name,
                f"{s.name}: {s.description} [{meta['database']}+{meta['cache']}]",
                bars,
                ylabel=next((o.get("unit", "requests/s") for o in per_server.values()), "requests/s"),
            )
        print(f"wrote bench/results/{s.name}.json")


def headline(out: dict[str, Any]) -> float | None:
    """The figure a repeated scenario is ranked by: its throughput (or an import's wall time, or — for a latency
    target such as the desk scan's — its p99)."""
    if "target_p99_ms" in out:
        return float((out.get("app") or {})["p99_ms"])
    if "first_import" in out:
        return float(out["first_import"]["wall_s"])
    for key in ("writes_per_s", "exchanges_per_s"):
        if isinstance(out.get(key), int | float):
            return float(out[key])
    app = out.get("app") or {}
    for key in ("orders_per_s", "rps"):
        if isinstance(app.get(key), int | float):
            return float(app[key])
    return None


def run_scenario(s: Scenario, ctx: Context) -> dict[str, Any]:
    """Run one scenario with the host's state around it. A "repeat" scenario runs ``ctx.rounds`` times: the
    published result is the median run (by its headline figure), with every run's figure and the spread."""
    before = host_sample()
    probe = speed_probe()
    started = time.time()
    with HostMonitor() as monitor:
        if s.rounds == "repeat" and ctx.rounds > 1:
            runs = [s.run(ctx) for _ in range(ctx.rounds)]
            figures = [headline(r) for r in runs]
            if all(f is not None for f in figures):
                ranked = sorted(range(len(runs)), key=lambda i: figures[i] or 0.0)
                out = runs[ranked[len(ranked) // 2]]
                out["round_figures"] = [round(f or 0.0, 2) for f in figures]
                out["spread"] = [
                    round(min(f or 0.0 for f in figures), 2),
                    round(max(f or 0.0 for f in figures), 2),
                ]
                if all("under_load" in r for r in runs):  # every path's p99, round by round
                    out["round_p99_ms"] = {
                        path: [r["under_load"][path]["p99_ms"] for r in runs]
                        for path in runs[0]["under_load"]
                    }
            else:
                out = runs[-1]
            out["rounds"] = len(runs)
        else:
            out = s.run(ctx)
            out.setdefault("rounds", 1)
    out["speed_probe_s"] = probe
    out["host"] = host_state(before, monitor.summary())
    out["elapsed_s"] = round(time.time() - started, 1)
    return out


def speed_probe() -> float:
    """Wall-clock seconds for a fixed pure-Python loop before each scenario: how fast this VM runs Python right
    now (the host's other guests move it). Wall time, not this process's CPU time: CPU time reads the same on an
    idle and on a saturated machine."""
    began = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i
    return round(time.perf_counter() - began, 3)


if __name__ == "__main__":
    main()
