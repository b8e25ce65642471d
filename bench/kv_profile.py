"""Where a KV PUT's CPU goes inside the application: the production WSGI app driven in-process, no HTTP server.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/kv_put_profile.py [--puts 3000]

Issue 21 asks for the KV PUT at ≥ 1.0× etcd; ``bench/kv_put_floor.py`` shows PostgreSQL alone reaches etcd with
the groups Bazaar forms, so the distance is the application's. This measures the application's share of it: the
demo tenant's API key, ``--rounds`` × ``--puts`` plain PUTs of random existing keys called straight into
``bazaar.config.wsgi.application`` (the fast path, ``bazaar/kvstore/fast.py``, answers them) from one thread,
and reports the median CPU (``time.process_time``) and wall time per PUT with each round's, then each part's share of the CPU from cProfile
run on process time (shares only: the profiler's own overhead inflates the absolute times): the PostgreSQL statement (send, wait, parse), the API key check (a Redis round trip), the
cache invalidation after the commit (a Redis round trip), and the rest (fast path, JSON, signals, metrics).
The HTTP server's own cost per request comes on top. Writes bench/results/kv_put_profile.json.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import bench_env, host_sample, manage, save

BODY = b'{"value": "v-1234567890"}'
KEYS = 5000
#: (label, file suffix, function name): cumulative CPU of these functions, per PUT.
PARTS = [
    ("postgresql_statement", "bazaar/core/sql.py", "execute"),
    ("api_key_check", "bazaar/kvstore/services/tenants.py", "apikey_authenticate"),
    ("invalidation", "bazaar/kvstore/cache.py", "invalidate_entry"),
    ("request_signals", "django/dispatch/dispatcher.py", "send"),
]


def _environ(i: int, api_key: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "PUT",
        "PATH_INFO": f"/api/kv/keys/profile/{i % KEYS:05d}",
        "QUERY_STRING": "",
        "HTTP_HOST": "127.0.0.1:8000",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(BODY),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(BODY)),
        "CONTENT_TYPE": "application/json",
        "HTTP_AUTHORIZATION": f"Bearer {api_key}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puts", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        raise SystemExit("needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    manage("migrate", "--noinput", "-v", "0")
    found = re.search(r"API key\s+(kv_\S+)", manage("demo"))
    if found is None:
        raise SystemExit("the demo printed no KV API key")
    api_key = found.group(1)
    os.environ.update(bench_env())  # the production settings the servers of the benchmarks run with
    from bazaar.config.wsgi import application

    statuses: set[str] = set()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        statuses.add(status)

    def run(n: int) -> None:
        for i in range(n):
            b"".join(application(_environ(i, api_key), start_response))

    run(KEYS)  # every key exists, connections and prepared statements are warm
    host = host_sample()
    cpus: list[float] = []
    walls: list[float] = []
    for _ in range(args.rounds):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run(args.puts)
        cpus.append((time.process_time() - cpu0) / args.puts * 1e6)
        walls.append((time.perf_counter() - wall0) / args.puts * 1e6)
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    run(args.puts)
    profile.disable()
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = pstats.Stats(profile).total_tt  # type: ignore[attr-defined]
    parts: dict[str, float] = {}
    for label, suffix, name in PARTS:
        parts[label] = sum(
            v[3] for (file, _line, fn), v in stats.items() if file.endswith(suffix) and fn == name
        )
    parts["rest"] = total - sum(parts.values())
    shares = {k: round(v / total, 3) for k, v in parts.items()}
    if statuses != {"200 OK"}:
        raise SystemExit(f"not every PUT succeeded: {statuses}")
    payload = {
        "what": "KV PUT through the production WSGI app in-process (fast path), one thread, no HTTP server",
        "puts": args.puts,
        "cpu_us_per_put": round(statistics.median(cpus), 1),
        "cpu_us_rounds": [round(c, 1) for c in cpus],
        "wall_us_per_put": round(statistics.median(walls), 1),
        "wall_us_rounds": [round(w, 1) for w in walls],
        "cpu_share_profiled": shares,
        "host_before": host,
        "host_after": host_sample(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(payload)
    save("kv_put_profile", payload)


if __name__ == "__main__":
    main()
