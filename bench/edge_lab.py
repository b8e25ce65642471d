"""Where the edge's time goes: nginx's proxy_cache HIT against the same bytes as a static file, without the stack.

    python bench/edge_lab.py [--variants rendered,no_open_file_cache,...] [--rounds 4] [--duration 3]

One nginx per variant, each rendered from deploy/nginx.conf.tmpl (``stack.nginx_conf``, one worker, no access log)
and then edited as the variant says, in front of a tiny upstream that answers the store page's size with the app's
headers (used once, to fill the cache); and ``harness.Nginx`` serving the same bytes as a static file — the
reference of ``bench/edge_stack.py``. wrk (32 connections, 1 thread) loads them in turn, each round starting and
ending with the static file, in a shuffled order.

The measure is **nginx worker CPU per request** (utime + stime of the one worker over the run ÷ requests): on a
shared 2-core host req/s measures the neighbours as much as nginx, the worker's own CPU barely does, and with
nginx the bottleneck (one worker) req/s follows it. A variant's figure is the static file's CPU per request
(the mean of the round's two static runs) ÷ the variant's: the req/s ratio it implies. Medians and spread of the
rounds are printed (req/s too, for reference). Loads go to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Nginx, ensure_tools, fetch, free_port, wait_http
from bench.scenarios.edge import STORE, stack_module

SIZE = 19694  # the demo store page's bytes in bench/results/edge_stack_sentinel.json
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# What the app's fast path answers for the store page (bazaar.core.fastpath + with_csp).
APP_HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Cache-Control", "max-age=0, must-revalidate"),
    ("ETag", '"5f1c0e6d2a9b4c7e8d3f"'),
    ("Vary", "Cookie"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Content-Security-Policy", CSP),
]
OFC = "      open_file_cache max=1000 inactive=60s;\n      open_file_cache_valid 0s;\n"
EDGE_END = "      add_header X-Cache-Status $upstream_cache_status always;\n"


def _in_edge_location(lines: str) -> Callable[[str], str]:
    """Add ``lines`` to the edge location (before its X-Cache-Status header)."""
    return lambda conf: conf.replace(EDGE_END, lines + EDGE_END, 1)


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(conf: str) -> str:
        assert old in conf, old
        return conf.replace(old, new)

    return edit


VARIANTS: dict[str, Callable[[str], str]] = {
    "rendered": lambda conf: conf,
    "no_open_file_cache": _replace(OFC, ""),
    # Unsafe (serves a purged page while the cache is cold: tests/system/test_edge.py), measured for reference.
    "open_file_cache_valid_60s": _replace("open_file_cache_valid 0s;", "open_file_cache_valid 60s;"),
    "no_x_cache_status": _replace(EDGE_END, ""),
    "gzip_off": _replace("  gzip on;", "  gzip off;"),
    "no_bypass": _replace("proxy_cache_bypass $cookie_sessionid $http_authorization $is_args;", ""),
    "sendfile_off": _in_edge_location("      sendfile off;\n"),
    "sendfile_off_no_open_file_cache": lambda conf: _replace(OFC, "      sendfile off;\n")(conf),
    "proxy_buffers_32k": _in_edge_location("      proxy_buffer_size 32k; proxy_buffers 8 32k;\n"),
    "levels_flat": _replace("levels=1:2 ", ""),
}


def page() -> bytes:
    rnd = random.Random(7)
    parts = [b"<!doctype html><html><head><title>demo shop</title></head><body>\n"]
    while sum(map(len, parts)) < SIZE:
        parts.append(f'<div data-product="{rnd.randint(1, 999999)}">item {rnd.random()}</div>\n'.encode())
    return (b"".join(parts)[: SIZE - 15] + b"</body></html>\n")[:SIZE]


class Upstream:
    """Answers every GET with the page and the app's headers (the fill; it runs once per variant)."""

    def __init__(self, body: bytes) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(200)
                for name, value in APP_HEADERS:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def worker_pid(master: int) -> int:
    """The one worker of an nginx master (the cache manager and loader are children too: the worker is the one
    named so)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split():
            if "worker process" in Path(f"/proc/{pid}/cmdline").read_text():
                return int(pid)
        time.sleep(0.1)
    raise RuntimeError(f"no worker under nginx {master}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, pid: int, duration: int) -> tuple[float, float]:
    """wrk on ``url``: (worker CPU microseconds per request, req/s)."""
    before = cpu_seconds(pid)
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", "32", "-d", f"{duration}s", "--timeout", "5s", url],
        capture_output=True, text=True, check=True, timeout=duration + 60,
    ).stdout  # fmt: skip
    spent = cpu_seconds(pid) - before
    done = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not done or not rps or "Non-2xx" in out:
        raise RuntimeError(out)
    return spent * 1e6 / int(done.group(1)), float(rps.group(1))


class EdgeNginx:
    """The stack's rendered nginx, edited, with its cache filled with the page."""

    def __init__(self, name: str, edit: Callable[[str], str], upstream: int) -> None:
        stack = stack_module()
        self.state = Path(tempfile.mkdtemp(prefix=f"bazaar-edge-lab-{name}-"))
        self.state.chmod(0o755)
        self.port = free_port()
        conf = stack.nginx_conf(
            self.state, port=self.port, purge_port=free_port(), app_ports=[upstream],
            worker_processes="1", access_log="off",
        )  # fmt: skip
        conf = edit(conf).replace("daemon on;", "daemon off;")
        (self.state / "nginx.conf").write_text(conf)
        test = ["nginx", "-t", "-q", "-c", str(self.state / "nginx.conf"), "-p", str(self.state)]
        checked = subprocess.run(test, capture_output=True, text=True)
        if checked.returncode:
            raise RuntimeError(f"{name}: {checked.stderr}")
        self.proc = subprocess.Popen(
            ["nginx", "-c", str(self.state / "nginx.conf"), "-p", str(self.state)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}{STORE}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=int, default=3)
    args = parser.parse_args()
    ensure_tools()
    names = args.variants.split(",")
    body = page()
    upstream = Upstream(body)
    ref = Nginx().start()
    static_url = ref.put("store.bin", body)
    edges = {name: EdgeNginx(name, VARIANTS[name], upstream.port) for name in names}
    try:
        assert ref.proc
        pids = {"static": worker_pid(ref.proc.pid)}
        for name, e in edges.items():
            wait_http(e.url)
            for _ in range(3):
                status, got, headers = fetch(e.url)
            if status != 200 or got != body or headers.get("X-Cache-Status", "HIT") != "HIT":
                raise RuntimeError(f"{name}: {status} {headers}")
            pids[name] = worker_pid(e.proc.pid)
        ratios: dict[str, list[float]] = {n: [] for n in names}
        cpu: dict[str, list[float]] = {n: [] for n in ["static", *names]}
        rps: dict[str, list[float]] = {n: [] for n in ["static", *names]}
        for r in range(args.rounds):
            order = random.Random(r).sample(names, len(names))
            first = load(static_url, pids["static"], args.duration)
            these = {n: load(edges[n].url, pids[n], args.duration) for n in order}
            last = load(static_url, pids["static"], args.duration)
            ref_cpu = (first[0] + last[0]) / 2
            for n, (us, per_s) in {"static": first, **these}.items():
                cpu[n].append(us)
                rps[n].append(per_s)
            cpu["static"].append(last[0])
            rps["static"].append(last[1])
            for n in names:
                ratios[n].append(ref_cpu / these[n][0])
            print(f"round {r + 1}: " + ", ".join(f"{n} {ratios[n][-1]:.3f}" for n in names), flush=True)
        result = {
            n: {
                "ratio_median": round(statistics.median(ratios[n]), 3),
                "ratio_spread": [round(min(ratios[n]), 3), round(max(ratios[n]), 3)],
                "cpu_us_per_request": round(statistics.median(cpu[n]), 2),
                "rps_median": round(statistics.median(rps[n])),
            }
            for n in names
        }
        result["static"] = {
            "cpu_us_per_request": round(statistics.median(cpu["static"]), 2),
            "rps_median": round(statistics.median(rps["static"])),
        }
        for n, row in result.items():
            print(f"{n:28} {json.dumps(row)}")
    finally:
        for e in edges.values():
            e.stop()
        ref.stop()
        upstream.server.shutdown()


if __name__ == "__main__":
    main()
