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
from bench.harness import Context, Nginx, Scenario, Server, bench_env, ensure_tools, manage, plot, save


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
    nginx = Nginx().start()
    results: dict[str, dict[str, Any]] = {s.name: {} for s in runnable}
    try:
        for kind in args.servers.split(","):
            server = Server(kind=kind, workers=args.workers, threads=args.threads).start()
            try:
                ctx = Context(server=server, nginx=nginx, duration=args.duration, env={})
                for s in runnable:
                    print(f"== {s.name} on {kind} x{args.workers} ...", flush=True)
                    probe = cpu_probe()
                    started = time.time()
                    out = s.run(ctx)
                    out["cpu_probe_s"] = probe
                    out["elapsed_s"] = round(time.time() - started, 1)
                    results[s.name][f"{kind}x{args.workers}"] = out
                    app = out.get("app", {})
                    ratio = out.get("ratio_to_nginx")
                    print(
                        f"   app {app.get('rps', 0):,.0f} req/s p50 {app.get('p50_ms')} ms p99 {app.get('p99_ms')} ms"
                        + (f"; nginx {out['nginx']['rps']:,.0f} req/s; ratio {ratio}" if ratio else ""),
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


def cpu_probe() -> float:
    """CPU seconds for a fixed pure-Python loop, measured before each scenario: this VM's speed moves with the
    host's load (the same loop took 0.6-1.3 s within an hour), so absolute numbers are read next to it."""
    began = time.process_time()
    total = 0
    for i in range(5_000_000):
        total += i
    return round(time.process_time() - began, 3)


if __name__ == "__main__":
    main()
