"""The store page through the edge of the full stack, with PostgreSQL replica and Redis Sentinel (issue #20).

    python bench/edge_stack.py [--rounds 5] [--duration 8] [--connections 32]

``bench/scenarios/edge.py`` measures the edge cache in front of two app servers on the machine's own PostgreSQL
and Redis. This run brings up ``deploy/stack.py`` as production would run it — two app servers, Celery, its own
PostgreSQL primary + hot-standby replica (``STACK_PG_REPLICA=1``), PgBouncer, Redis primary + replica + three
Sentinels, nginx with the edge cache — on ports of its own, then:

1. runs the stack's own tests against it (``pytest -m stack``: cross-server freshness through both app servers and
   the edge, the edge never stale for reads that start after a write returned, worker, static files) and records
   their outcome: the freshness claim is checked on this topology, not assumed from another;
2. renders the stack's nginx config with one worker process and no access log (as the static reference runs),
   reloads it, warms the store page into the edge cache, and loads it and the same bytes served by nginx as a
   static file in alternating rounds (edge, static, edge, ...). The ratio is taken within each round; the median
   and the spread of the rounds are published.

Writes bench/results/edge_stack_sentinel.json and .png. Loads go to 127.0.0.1 only and stop by themselves; the
stack is taken down whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))

from bench.harness import (
    PY,
    ROOT,
    HostMonitor,
    Nginx,
    alternate,
    ensure_tools,
    host_sample,
    host_state,
    paired_ratio,
    plot,
    save,
    wrk,
)
from bench.scenarios.edge import STORE, _x_cache_status, warm_edge

NAME = "edge_stack_sentinel"
TARGET = 0.85

STACK_ENV = {
    "STACK_STATE": str(ROOT / "var" / "edge-stack"),
    "STACK_APPS": "2",
    "STACK_APP_PORTS": "18601",
    "STACK_PORT": "18680",
    "STACK_PURGE_PORT": "18690",
    "STACK_DB": "bazaar_edge_stack",
    "STACK_REDIS_PORTS": "18779,18780",
    "STACK_SENTINEL_PORTS": "18879,18880,18881",
    "STACK_PGBOUNCER_PORT": "18632",
    "STACK_PG_REPLICA": "1",
    "STACK_PG_PORTS": "18640,18641",
}


def _stack_tests(stack: Any) -> dict[str, Any]:
    """``pytest -m stack`` against this stack; the summary line and the exit status."""
    env = {
        **os.environ,
        "BAZAAR_STACK_URL": f"http://127.0.0.1:{stack.NGINX_PORT}",
        "BAZAAR_STACK_APPS": ",".join(f"http://127.0.0.1:{p}" for p in stack.APP_PORTS),
    }
    started = time.monotonic()
    r = subprocess.run(
        [PY, "-m", "pytest", "-m", "stack", "-q", "-rf", "-p", "no:xdist", "-p", "no:cacheprovider", "bazaar", "tests"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    return {
        "command": "pytest -m stack bazaar tests (BAZAAR_STACK_URL/BAZAAR_STACK_APPS at this stack)",
        "exit_status": r.returncode,
        "summary": lines[-1] if lines else r.stderr[-500:],
        "failed": [line for line in lines if line.startswith("FAILED ")],
        "output": r.stdout[-20000:],
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--skip-tests", action="store_true", help="measure only (the stack tests take ~1 min)"
    )
    args = parser.parse_args()
    ensure_tools()
    os.environ.update(STACK_ENV)
    import stack  # deploy/stack.py, configured by the environment above

    state = Path(STACK_ENV["STACK_STATE"])
    up = subprocess.run(
        [PY, "deploy/stack.py", "up"], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True
    )
    ref = Nginx()
    try:
        if up.returncode != 0:
            raise SystemExit(f"stack up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
        tests = None if args.skip_tests else _stack_tests(stack)
        if tests:
            print(
                f"stack tests: {tests['summary']} ({tests['seconds']} s)",
                *tests["failed"],
                sep="\n",
                flush=True,
            )
            output = tests.pop("output")
            if tests["exit_status"]:
                (state.parent / "edge-stack-tests.log").write_text(output)
        conf = stack.nginx_conf(
            state, port=stack.NGINX_PORT, purge_port=stack.PURGE_PORT, app_ports=stack.APP_PORTS,
            edge=True, worker_processes="1", access_log="off",
        )  # fmt: skip
        (state / "nginx.conf").write_text(conf)
        subprocess.run(
            ["nginx", "-c", str(state / "nginx.conf"), "-p", str(state), "-s", "reload"], check=True
        )
        time.sleep(2)  # the old workers finish; the new one takes the port
        url = f"http://127.0.0.1:{stack.NGINX_PORT}{STORE}"
        body = warm_edge(url, 5)
        ref.start()
        static_url = ref.put("store.bin", body)
        before = host_sample()
        with HostMonitor() as monitor:
            medians, per_round = alternate(
                {
                    "edge": lambda: wrk(url, duration=args.duration, connections=args.connections),
                    "nginx": lambda: wrk(static_url, duration=args.duration, connections=args.connections),
                },
                args.rounds,
            )
        after_load = _x_cache_status(url)
    finally:
        ref.stop()
        subprocess.run([PY, "deploy/stack.py", "down"], cwd=ROOT, env=dict(os.environ), capture_output=True)
    ratio = paired_ratio(per_round, "edge", "nginx")
    payload = {
        "scenario": NAME,
        "what": "the store page (demo shop) through the edge cache of deploy/stack.py with a PostgreSQL replica and "
        "Redis Sentinel, against the same bytes from nginx as a static file, alternating rounds",
        "command": " ".join(["python", "bench/edge_stack.py", *sys.argv[1:]]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "setup": {
            "stack": "deploy/stack.py: 2 app servers (granian), Celery worker + beat, PostgreSQL primary + "
            "streaming replica (app servers read replica-safe surfaces from it), PgBouncer, Redis primary + "
            "replica + 3 Sentinels (the app reaches Redis through sentinel://), nginx with the edge cache",
            "nginx": "the stack's rendered config with worker_processes 1 and access_log off for the load, like the "
            "static reference (harness.Nginx: 1 worker, sendfile, no access log)",
            "load": f"wrk, {args.connections} connections, 1 thread, {args.duration} s per run, "
            f"{args.rounds} alternating rounds",
            "cpus": os.cpu_count(),
        },
        "bytes": len(body),
        "products_on_page": body.count(b"data-product="),
        "edge": medians["edge"],
        "nginx": medians["nginx"],
        "ratio_to_nginx": ratio["median"],
        "ratio_spread": ratio["spread"],
        "ratio_rounds": ratio["rounds"],
        "x_cache_status_after_load": after_load,
        "stack_tests": tests,
        "host": host_state(before, monitor.summary()),
        "target": f"edge >= {TARGET}x nginx static, same bytes, alternating rounds (issue #20)",
        "target_met": bool(ratio["median"] and ratio["median"] >= TARGET),
    }
    path = save(NAME, payload)
    plot(
        NAME,
        f"store page through the stack's edge (replica + Sentinel): {ratio['median']}x nginx "
        f"(rounds {ratio['spread'][0]}-{ratio['spread'][1]})",
        {
            "edge cache (stack, replica + Sentinel)": medians["edge"]["rps"],
            "nginx static file": medians["nginx"]["rps"],
        },
    )
    print(json.dumps({k: payload[k] for k in ("ratio_to_nginx", "ratio_spread", "stack_tests")}, indent=1))
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
