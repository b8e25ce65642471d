"""PgBouncer in front of PostgreSQL: session pooling vs transaction pooling (prepared statements off) vs direct.

    python bench/pooler.py [--rounds 3] [--duration 5] [--db bazaar_bench_pooler]

Three production servers (granian, 2 workers x 4 threads) on one database, each through its own path: direct to
PostgreSQL (prepared hot statements), PgBouncer 1.18 in session mode (prepared, as direct), PgBouncer in transaction
mode (``DATABASE_PREPARED_STATEMENTS=false``: 1.18 cannot hold them there). The load is the KV PUT (a hot write
through ``core.sql``) and a KV GET that misses the cache is not measured (reads are served from Redis). Rounds
alternate the three sides (the host is noisy); medians and spread go to bench/results/pooler_modes.json + .png.
Needs DATABASE_URL (PostgreSQL on 127.0.0.1) and REDIS_URL; starts and stops its own PgBouncers.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))

import ha

from bench.harness import Server, alternate, bench_env, free_port, manage, plot, save, stop_group, wrk
from bench.scenarios.kvstore import PUT_LUA


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--db", default="bazaar_bench_pooler")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres") or not os.environ.get("REDIS_URL"):
        raise SystemExit("bench/pooler.py needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    pg = urlparse(base)
    direct = f"postgres://postgres@127.0.0.1:{pg.port or 5432}/{args.db}"
    subprocess.run(
        ["createdb", "-h", "127.0.0.1", "-p", str(pg.port or 5432), "-U", "postgres", args.db], check=False
    )
    env = bench_env({"DATABASE_URL": direct, "BAZAAR_CACHE_PREFIX": f"pooler-{uuid.uuid4().hex[:6]}"})
    manage("migrate", "--noinput", "-v", "0", env=env)
    manage("collectstatic", "--noinput", "-v", "0", env=env)
    key = re.search(r"API key\s+(kv_\S+)", manage("demo", env=env))
    assert key is not None
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(pg.port or 5432), "-U", "postgres", "-d", args.db, "-qc",
         f'ALTER DATABASE "{args.db}" SET statement_timeout = 5000'],
        check=True,
    )  # fmt: skip
    state = Path(tempfile.mkdtemp(prefix="bazaar-pooler-"))
    state.chmod(0o755)  # PgBouncer runs as the postgres user when we are root
    bouncers: list[subprocess.Popen[bytes]] = []
    servers: dict[str, Server] = {}
    try:
        urls: dict[str, tuple[str, dict[str, str]]] = {"direct": (direct, {})}
        for mode in ("session", "transaction"):
            port = free_port()
            ini = ha.pgbouncer_conf(
                state / mode, port=port, db=args.db, pg_port=pg.port or 5432, mode=mode, pool_size=20
            )
            bouncers.append(subprocess.Popen(ha.pgbouncer_argv(ini), start_new_session=True))
            ha.wait_for(
                functools.partial(ha.pg_ready, port),
                f"pgbouncer {mode}",
            )
            extra = {"DATABASE_PREPARED_STATEMENTS": "false", "DATABASE_DISABLE_SERVER_SIDE_CURSORS": "true"}
            urls[f"pgbouncer {mode}"] = (
                f"postgres://postgres@127.0.0.1:{port}/{args.db}",
                extra if mode == "transaction" else {},
            )
        for name, (url, extra) in urls.items():
            servers[name] = Server(workers=2, threads=4, env={**env, "DATABASE_URL": url, **extra}).start()

        def put(server: Server) -> dict[str, Any]:
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
                f.write(PUT_LUA % {"run": uuid.uuid4().hex[:8], "key": key.group(1)})
            try:
                return wrk(server.base + "/", duration=args.duration, connections=16, script=f.name)
            finally:
                os.unlink(f.name)

        for s in servers.values():  # warm: code loaded, connections and prepared statements made
            put(s)
        sides: dict[str, Callable[[], dict[str, Any]]] = {
            name: functools.partial(put, s) for name, s in servers.items()
        }
        medians, per_round = alternate(sides, args.rounds)
    finally:
        for s in servers.values():
            s.stop()
        for b in bouncers:
            stop_group(b)
    payload: dict[str, Any] = {
        "what": "KV PUT (hot write through core.sql), 16 connections, wrk; granian 2 workers x 4 threads per side",
        "rounds": per_round,
        "medians": medians,
        "note": "one 2-core host shared with other work: compare within a round; spread is in the rounds",
    }
    save("pooler_modes", payload)
    plot("pooler_modes", "KV PUT through PgBouncer vs direct (median of rounds)",
         {k: float(v.get("rps", 0.0)) for k, v in medians.items()}, ylabel="writes/s")  # fmt: skip
    for name, m in medians.items():
        print(f"{name:24s} {m.get('rps', 0):8.0f} writes/s  p99 {m.get('p99_ms', 0):6.1f} ms  rounds "
              + ", ".join(f"{r[name]:.0f}" for r in per_round))  # fmt: skip


if __name__ == "__main__":
    main()
