"""Start Bazaar's production WSGI server.

``python deploy/serve.py [--server granian|gunicorn] [--workers N] [--threads T] [--host H] [--port P]
[--watch-port W]``

Defaults are chosen by measurement (bench/results/server_choice.json, docs/design-notes.md): granian WSGI.
One worker process per core, with the embedded default too: its cache is one SQLite file shared by every process
(bazaar.core.cache.backends.SqliteBackend), so a write in one worker, a Celery task or the CLI invalidates what
the other workers serve, exactly as with Redis. Each process has 4 blocking threads: a request that
writes spends most of its time waiting for PostgreSQL, and threads overlap those waits (measured on the KV PUT
scenario: 2x1 threads 703-891 writes/s, 2x4 threads 1,094-1,323 writes/s, the cached store page unchanged).

``--watch-port W`` (or WATCH_PORT) also starts the watch server on W: granian in ASGI mode serving only
``GET /api/kv/watch`` (bazaar.kvstore.watch_server), where a waiting watcher costs a coroutine and a socket instead
of one of the threads above. nginx routes that path to it (deploy/stack.py, deploy/nginx.conf); a client that
reaches this WSGI server directly is still answered, with the bounded waiting of bazaar/kvstore/watch.py.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env_set(name: str) -> bool:
    """Whether ``name`` is set in the environment or in .env (which bazaar/config/settings/base.py also reads)."""
    if os.environ.get(name):
        return True
    env_file = ROOT / ".env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.strip().startswith(f"{name}=") and line.split("=", 1)[1].strip():
                return True
    return False


def build_command(server: str, host: str, port: int, workers: int, threads: int) -> list[str]:
    bindir = Path(sys.executable).parent
    if server == "gunicorn":
        cmd = [
            str(bindir / "gunicorn"),
            "bazaar.config.wsgi:application",
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(workers),
            "--access-logfile",
            "-" if os.environ.get("ACCESS_LOG") else "/dev/null",
            "--keep-alive",
            "5",
            "--graceful-timeout",
            "10",
        ]
        if threads > 1:
            cmd += ["--threads", str(threads), "--worker-class", "gthread"]
        return cmd
    return [
        str(bindir / "granian"),
        "--interface",
        "wsgi",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--respawn-failed-workers",
        "--log-level",
        "warning",
        "--no-ws",
        "bazaar.config.wsgi:application",
    ]


def build_watch_command(host: str, port: int, workers: int = 1) -> list[str]:
    """The watch server: granian ASGI, one event loop per worker, room for many thousands of open connections."""
    return [
        str(Path(sys.executable).parent / "granian"),
        "--interface",
        "asgi",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--backlog",
        "4096",
        # granian's default admits backlog/workers requests at once; a parked watcher is one of them.
        "--backpressure",
        os.environ.get("WATCH_BACKPRESSURE", "20000"),
        "--respawn-failed-workers",
        "--log-level",
        "warning",
        "--no-ws",
        "bazaar.config.watch_asgi:application",
    ]


def raise_open_files() -> None:
    """Every watcher is an open socket: lift the soft limit on open files to the hard one (children inherit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server", choices=["granian", "gunicorn"], default=os.environ.get("BAZAAR_SERVER", "granian")
    )
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    default_workers = os.cpu_count() or 2
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", default_workers)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", 4)))
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="with CELERY_BROKER_URL set, do not start a Celery worker (with beat) beside the server",
    )
    parser.add_argument(
        "--watch-port",
        type=int,
        default=int(os.environ.get("WATCH_PORT") or 0),
        help="also start the watch server (GET /api/kv/watch, ASGI) on this port; 0: none",
    )
    parser.add_argument("--watch-workers", type=int, default=int(os.environ.get("WATCH_WORKERS", 1)))
    parser.add_argument(
        "--watch-only", action="store_true", help="start only the watch server (on --watch-port, else --port)"
    )
    args = parser.parse_args()

    os.chdir(ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bazaar.config.settings.base")
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not metrics_dir:
        metrics_dir = tempfile.mkdtemp(prefix="bazaar-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    else:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        os.makedirs(metrics_dir, exist_ok=True)
    cmd = build_command(args.server, args.host, args.port, args.workers, args.threads)
    raise_open_files()
    if args.watch_only:
        cmd = build_watch_command(args.host, args.watch_port or args.port, args.watch_workers)
        os.execv(cmd[0], cmd)
    commands = []
    if not (args.no_worker or os.environ.get("BAZAAR_NO_WORKER") or not _env_set("CELERY_BROKER_URL")):
        # A broker is configured: tasks go to it, so run a worker (with the beat scheduler) beside the server.
        # BAZAAR_WORKER_NICE=N runs the worker at a lower CPU priority than the web server: on a shared box the
        # queue then absorbs a burst and drains in the quiet that follows, instead of slowing every request.
        nice = os.environ.get("BAZAAR_WORKER_NICE")
        worker_cmd = [
            *(["nice", "-n", nice] if nice else []),
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "bazaar.config",
            "worker",
            "-B",
            "-l",
            "info",
        ]
        print("starting a Celery worker with beat:", " ".join(worker_cmd[1:]), file=sys.stderr)
        commands.append(worker_cmd)
    if args.watch_port:
        print(f"starting the watch server on {args.host}:{args.watch_port}", file=sys.stderr)
        commands.append(build_watch_command(args.host, args.watch_port, args.watch_workers))
    if not commands:
        os.execv(cmd[0], cmd)
    children = [subprocess.Popen(c) for c in [*commands, cmd]]

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(child.poll() is None for child in children):
        time.sleep(0.5)
    stop(signal.SIGTERM, None)
    for child in children:
        child.wait(30)


if __name__ == "__main__":
    main()
