"""Where a KV request's CPU goes inside the application: the production WSGI app driven in-process, no HTTP server.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/kv_profile.py [--op put|get] [--requests 3000]

Issue 21 asks for the KV PUT at ≥ 1.0× etcd and a random-key GET at ≥ 0.5× the hot-key GET. ``bench/kv_put_floor.py``
shows PostgreSQL alone reaches etcd with the groups Bazaar forms, so the distance is the application's. This
measures the application's share of it: the demo tenant's API key, ``--rounds`` × ``--requests`` plain requests
called straight into ``bazaar.config.wsgi.application`` (the fast paths, ``bazaar/kvstore/fast.py`` and
``bazaar/kvstore/cache.py``, answer them) from one thread, and reports the median CPU (``time.process_time``) and
wall time per request with each round's, then each part's share of the CPU from cProfile run on process time
(shares only: the profiler's own overhead inflates the absolute times). The HTTP server's own cost per request
comes on top.

* ``--op put`` (``bench/results/kv_put_profile.json``): PUTs of random existing keys; parts: the PostgreSQL
  statement, the API key check (a Redis round trip), the cache invalidation after the commit, request signals.
* ``--op get`` (``bench/results/kv_get_profile.json``): the same keys read four ways, each measured on its own:
  ``hit`` (the entry cached), ``cold_miss`` (neither the entry nor its generation counter in Redis, as for a key
  imported or expired from the cache, read for the first time by a process that has not stored it: the random-key
  GET at 1M keys is this case; not stored, ``core.cache.admit``; once nearly every lookup misses cold, read without
  a lookup, ``core.cache.skip_lookup``), ``cold_miss_stored`` (the same key's second cold miss, which is stored) and
  ``warm_miss`` (the counter there, the entry not); parts: the cache lookup, readying the fill, the statement, the
  fill, request signals.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import bench_env, host_sample, manage, save

BODY = b'{"value": "v-1234567890"}'
KEYS = 5000
#: (label, file suffix, function name): cumulative CPU of these functions, per request.
PUT_PARTS = [
    ("postgresql_statement", "bazaar/core/sql.py", "execute"),
    ("api_key_check", "bazaar/kvstore/services/tenants.py", "apikey_authenticate"),
    ("invalidation", "bazaar/kvstore/cache.py", "invalidate_entry"),
    ("request_signals", "django/dispatch/dispatcher.py", "send"),
]
GET_PARTS = [
    ("cache_lookup", "bazaar/core/cache/__init__.py", "lookup"),
    ("ready_to_fill", "bazaar/core/cache/__init__.py", "ready_to_fill"),
    ("postgresql_statement", "bazaar/core/sql.py", "execute"),
    ("fill", "bazaar/core/cache/__init__.py", "fill"),
    ("request_signals", "django/dispatch/dispatcher.py", "send"),
]


def _environ(method: str, i: int, api_key: str) -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": f"/api/kv/keys/profile/{i % KEYS:05d}",
        "QUERY_STRING": "",
        "HTTP_HOST": "127.0.0.1:8000",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(BODY if method == "PUT" else b""),
        "wsgi.errors": sys.stderr,
        "HTTP_AUTHORIZATION": f"Bearer {api_key}",
    }
    if method == "PUT":
        environ.update({"CONTENT_LENGTH": str(len(BODY)), "CONTENT_TYPE": "application/json"})
    return environ


def _measure(
    run: Callable[[int], None], before_round: Callable[[], None], n: int, rounds: int, parts: list[Any]
) -> dict[str, Any]:
    """Median CPU and wall µs per request over ``rounds`` (``before_round`` untimed), then one profiled round."""
    cpus: list[float] = []
    walls: list[float] = []
    for _ in range(rounds):
        before_round()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run(n)
        cpus.append((time.process_time() - cpu0) / n * 1e6)
        walls.append((time.perf_counter() - wall0) / n * 1e6)
    before_round()
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    run(n)
    profile.disable()
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = pstats.Stats(profile).total_tt  # type: ignore[attr-defined]
    spent: dict[str, float] = {}
    for label, suffix, name in parts:
        spent[label] = sum(
            v[3] for (file, _line, fn), v in stats.items() if file.endswith(suffix) and fn == name
        )
    spent["rest"] = total - sum(spent.values())
    return {
        "cpu_us": round(statistics.median(cpus), 1),
        "cpu_us_rounds": [round(c, 1) for c in cpus],
        "wall_us": round(statistics.median(walls), 1),
        "wall_us_rounds": [round(w, 1) for w in walls],
        "cpu_share_profiled": {k: round(v / total, 3) for k, v in spent.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op", choices=("put", "get"), default="put")
    parser.add_argument("--requests", "--puts", type=int, default=3000)
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

    def runner(method: str) -> Callable[[int], None]:
        def run(n: int) -> None:
            for i in range(n):
                b"".join(application(_environ(method, i, api_key), start_response))

        return run

    runner("PUT")(KEYS)  # every key exists, connections and prepared statements are warm
    host = host_sample()
    if args.op == "put":
        result = _measure(runner("PUT"), lambda: None, args.requests, args.rounds, PUT_PARTS)
        cases = {"put": result}
        what = "KV PUT through the production WSGI app in-process (fast path), one thread, no HTTP server"
    else:
        import redis

        from bazaar.core.cache import prefix
        from bazaar.kvstore.cache import APP, VARIANT
        from bazaar.kvstore.models import Tenant

        tenant_id = Tenant.objects.get(slug="demo").pk
        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        bases = [f"{prefix()}:{APP}:entry:{tenant_id}:profile/{i:05d}" for i in range(KEYS)]

        from bazaar.core.cache.state import STATE

        get = runner("GET")
        n = min(args.requests, KEYS)  # each key once a round: every read of a miss round is a miss

        def drop(suffixes: tuple[str, ...], seen_once: bool = False) -> Callable[[], None]:
            def before() -> None:
                pipe = client.pipeline(transaction=False)
                for base in bases:
                    pipe.delete(*(f"{base}:{s}" for s in suffixes))
                pipe.execute()
                STATE.cold_misses.clear()  # core.cache.admit's doorkeeper: no key has missed cold before
                if "gen" in suffixes:  # nor been stored by this process (else skip_lookup looks it up)
                    STATE.stored_lately.clear()
                if seen_once:
                    get(n)  # each key's first cold miss (not stored): the timed round is each one's second

            return before

        get(KEYS)  # warm: every entry cached
        cases = {
            "hit": _measure(get, lambda: None, n, args.rounds, GET_PARTS),
            "cold_miss": _measure(get, drop(("gen", VARIANT)), n, args.rounds, GET_PARTS),
            "cold_miss_stored": _measure(
                get, drop(("gen", VARIANT), seen_once=True), n, args.rounds, GET_PARTS
            ),
            "warm_miss": _measure(get, drop((VARIANT,)), n, args.rounds, GET_PARTS),
        }
        what = "KV GET through the production WSGI app in-process (fast path), one thread, no HTTP server"
    if statuses != {"200 OK"}:
        raise SystemExit(f"not every request succeeded: {statuses}")
    payload = {
        "what": what,
        "requests": args.requests,
        **cases,
        "host_before": host,
        "host_after": host_sample(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(payload)
    save(f"kv_{args.op}_profile", payload)


if __name__ == "__main__":
    main()
