"""Memory of one large KV import on the production server: how much the worker that takes it grows.

    .venv/bin/python bench/kv_import_memory.py [--mb 100] [--value-bytes 1000]

Starts the production server (granian, 1 worker × 1 thread) on the configured database (DATABASE_URL; a fresh
tenant each run), streams an import of ``--mb`` megabytes of JSON lines to ``POST /api/kv/import`` (generated on
the fly, so the client holds none of it), and reads the worker's resident memory before and its high-water mark
(VmHWM) after. Writes bench/results/kv_import_memory.json.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Server, bench_env, manage, save


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def _workers(server: Server) -> list[int]:
    assert server.proc is not None
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(server.proc.pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()] or [server.proc.pid]


def _lines(count: int, value_bytes: int) -> Iterator[bytes]:
    filler = "v" * value_bytes
    for i in range(count):
        yield json.dumps({"key": f"bulk/{i:08d}", "value": {"n": i, "text": filler}}).encode() + b"\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--value-bytes", type=int, default=1000)
    args = parser.parse_args()

    env = bench_env({"MAX_UPLOAD_BYTES": str((args.mb + 10) * 1024 * 1024)})
    manage("migrate", "--noinput", "-v", "0", env=env)
    slug = f"mem-{uuid.uuid4().hex[:8]}"
    manage("kvadmin", "tenants", "create", slug, env=env)
    key = manage("kvadmin", "keys", "create", "--tenant", slug, env=env).strip().split()[-1]

    line_bytes = len(next(_lines(1, args.value_bytes)))
    count = args.mb * 1024 * 1024 // line_bytes
    size = sum(len(line) for line in _lines(count, args.value_bytes))

    server = Server(workers=1, threads=1, env=env).start()
    try:
        pids = _workers(server)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3600)
        conn.request("GET", "/healthz")
        conn.getresponse().read()  # the worker has loaded its code
        before = {pid: _kib(pid, "VmRSS") for pid in pids}
        started = time.perf_counter()
        # The server may answer before reading everything (a refusal): its answer says why.
        with contextlib.suppress(BrokenPipeError):
            conn.request(
                "POST",
                "/api/kv/import",
                body=_lines(count, args.value_bytes),
                headers={
                    "Host": "127.0.0.1",
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "application/x-ndjson",
                    "Content-Length": str(size),
                },
            )
        response = conn.getresponse()
        body = response.read()
        seconds = time.perf_counter() - started
        peak = {pid: _kib(pid, "VmHWM") for pid in pids}
    finally:
        server.stop()
    growth = max(peak[pid] - before[pid] for pid in pids) / 1024
    result = {
        "import_mb": round(size / 1024 / 1024, 1),
        "records": count,
        "status": response.status,
        "answer": json.loads(body) if body.startswith(b"{") else body[:200].decode(errors="replace"),
        "seconds": round(seconds, 1),
        "worker_rss_before_mb": round(max(before.values()) / 1024, 1),
        "worker_peak_mb": round(max(peak.values()) / 1024, 1),
        "growth_mb": round(growth, 1),
        "database": "postgresql" if "postgres" in env.get("DATABASE_URL", "") else "sqlite",
    }
    print(json.dumps(result))
    save("kv_import_memory", result)


if __name__ == "__main__":
    main()
