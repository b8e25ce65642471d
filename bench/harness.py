"""Benchmark harness: a real production server on 127.0.0.1, wrk as the load tool, nginx as the physical reference.

Every load goes to 127.0.0.1 only and stops by itself (wrk -d). Results: bench/results/<scenario>.json + .png.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PY = sys.executable


def ensure_tools(*, etcd: bool = False) -> None:
    """Install wrk and nginx (and etcd, for the KV comparison) from Debian's packages when missing."""
    wanted = [("wrk", "wrk"), ("nginx", "nginx-light")] + ([("etcd", "etcd-server")] if etcd else [])
    missing = [pkg for tool, pkg in wanted if not shutil.which(tool)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"bench needs {missing}: apt-get install -y {' '.join(missing)}")
    print(f"installing {missing} ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *missing],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def stop_group(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM a process group started with ``start_new_session``; SIGKILL it after 15 s."""
    if proc and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def report_size(n: int, unit: str, medians: dict[str, dict[str, Any]]) -> None:
    """Print one size's medians of a by-size scenario (req/s and p99 per kind of request)."""
    print(
        f"   {n:>9,} {unit}: "
        + ", ".join(f"{k} {v['rps']:,.0f} req/s p99 {v['p99_ms']} ms" for k, v in medians.items()),
        flush=True,
    )


def largest_over_smallest(
    results: dict[str, dict[str, dict[str, Any]]], sizes: list[int]
) -> dict[str, float]:
    """Per kind of request: req/s at the largest size over req/s at the smallest (the issue-21 flatness figure)."""
    smallest, largest = results[str(sizes[0])], results[str(sizes[-1])]
    return {
        kind: round(largest[kind]["rps"] / smallest[kind]["rps"], 3)
        for kind in smallest
        if smallest[kind]["rps"]
    }


def plot_sizes(
    results: dict[str, dict[str, dict[str, Any]]], kinds: list[str], *, xlabel: str, title: str, name: str
) -> Path:
    """A by-size scenario's plot: req/s (left) and p99 (right) of each kind of request against the data size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    xs = [int(s) for s in results]
    for kind, marker in zip(kinds, "osd^v", strict=False):
        axes[0].plot(xs, [results[s][kind]["rps"] for s in results], marker=marker, label=kind)
        axes[1].plot(xs, [results[s][kind]["p99_ms"] for s in results], marker=marker, label=kind)
    size_axes(axes, xlabel)
    axes[0].set_ylim(bottom=0)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, name)


def scale_result(
    results: dict[str, dict[str, dict[str, Any]]], sizes: list[int], *, clients: int, target: str, rounds: int
) -> dict[str, Any]:
    """A by-size scenario's result (``bench/report.py``'s scale curves): the medians per size, the flatness per kind
    of request, and whether every kind stays within 2× (largest over smallest ≥ 0.5)."""
    flat = largest_over_smallest(results, sizes)
    return {
        "sizes": results,
        "clients": clients,
        "largest_over_smallest": flat,
        "target": target,
        "meets_target": all(v >= 0.5 for v in flat.values()),
        "rounds": rounds,
    }


def size_axes(axes: Any, xlabel: str) -> None:
    """The two panels of a by-size plot: req/s and p99 against a log size axis."""
    for ax, ylabel in ((axes[0], "requests/s (median of rounds)"), (axes[1], "p99 latency, ms")):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)


def save_figure(fig: Any, name: str) -> Path:
    """Write a matplotlib figure to bench/results/<name> and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    fig.savefig(path)
    plt.close(fig)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout}s")


def bench_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bazaar.config.settings.base",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": env.get("DJANGO_SECRET_KEY")
            or "bench-" + "x7Qp2Lm9Zt4Rk8Wn3Hv6Jc1Bd5Fg0Sy" * 2,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_HTTPS": "false",
            "BAZAAR_VAR_DIR": env.get("BAZAAR_VAR_DIR") or str(ROOT / "var" / "bench"),
            "LOG_LEVEL": "ERROR",
        }
    )
    if extra:
        env.update(extra)
    return env


def drop_cached(env: dict[str, str] | None = None) -> int:
    """Delete every key of the bench's cache namespace (``BAZAAR_CACHE_PREFIX``) from its Redis, so each sitting
    starts from the same cold cache whatever an earlier sitting left; called before any server starts (Redis is a
    cache: PostgreSQL holds the truth). Returns how many keys went; 0 without REDIS_URL."""
    env = env or bench_env()
    url = env.get("REDIS_URL", "")
    if not url:
        return 0
    import redis

    namespace = env.get("BAZAAR_CACHE_PREFIX") or "bazaar"
    client = redis.Redis.from_url(url)
    gone = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{namespace}:*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                gone += int(client.unlink(*batch))
                batch = []
        if batch:
            gone += int(client.unlink(*batch))
    finally:
        client.close()
    return gone


def manage(*args: str, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env or bench_env(), capture_output=True, text=True
    )
    if r.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return r.stdout


def setup(*args: str, env: dict[str, str] | None = None) -> str:
    """Run a bench fixture action (``python -m bench.setup ARGS``, not part of the product's CLI); its stdout."""
    r = subprocess.run(
        [PY, "-m", "bench.setup", *args], cwd=ROOT, env=env or bench_env(), capture_output=True, text=True
    )
    if r.returncode != 0:
        raise RuntimeError(f"bench.setup {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return r.stdout


@dataclass
class Server:
    """A production WSGI server started through deploy/serve.py."""

    kind: str = "granian"
    workers: int = 2
    threads: int = 1
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.port = self.port or free_port()
        cmd = [
            PY,
            "deploy/serve.py",
            "--server",
            self.kind,
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--port",
            str(self.port),
        ]
        env = bench_env(self.env)
        if not env.get("REDIS_URL"):
            env["WEB_WORKERS"] = str(self.workers)
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_http(self.base + "/healthz")
        return self

    def stop(self) -> None:
        stop_group(self.proc)
        self.proc = None


@dataclass
class WatchServer:
    """The watch server alone (``deploy/serve.py --watch-only``: granian ASGI, GET /api/kv/watch)."""

    port: int = 0
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WatchServer:
        self.port = self.port or free_port()
        cmd = [PY, "deploy/serve.py", "--watch-only", "--watch-port", str(self.port)]
        cmd += ["--watch-workers", str(self.workers)]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=bench_env(self.env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_http(self.base + "/healthz")
        return self

    def stop(self) -> None:
        stop_group(self.proc)
        self.proc = None

    def usage(self) -> dict[str, Any]:
        """Resident memory (KiB), threads and CPU seconds so far of the server's processes (granian's main process
        and workers)."""
        assert self.proc is not None
        pids, rss, threads, ticks = [self.proc.pid], 0, 0, 0
        while pids:
            pid = pids.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                for task in Path(f"/proc/{pid}/task").iterdir():
                    pids += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            rss += int(fields["VmRSS"].split()[0])
            threads += int(fields["Threads"])
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(stat[11]) + int(stat[12])  # utime, stime
        return {"rss_kib": rss, "threads": threads, "cpu_s": round(ticks / os.sysconf("SC_CLK_TCK"), 2)}


@dataclass
class Nginx:
    """nginx serving static files from a temp docroot: the physical reference for a response."""

    port: int = 0
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bazaar-nginx-")))
    proc: subprocess.Popen[bytes] | None = None

    def put(self, name: str, body: bytes) -> str:
        (self.root / "www").mkdir(parents=True, exist_ok=True)
        (self.root / "www" / name).write_bytes(body)
        (self.root / "www" / name).chmod(0o644)
        return f"http://127.0.0.1:{self.port}/{name}"

    def start(self) -> Nginx:
        self.port = self.port or free_port()
        (self.root / "www").mkdir(parents=True, exist_ok=True)
        # nginx workers drop to an unprivileged user: the docroot must be world-readable.
        for p in (self.root, self.root / "www"):
            p.chmod(0o755)
        conf = self.root / "nginx.conf"
        conf.write_text(
            f"""worker_processes 1;
daemon off;
pid {self.root}/nginx.pid;
error_log {self.root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; keepalive_requests 100000;
  default_type text/html;
  client_body_temp_path {self.root}/tmp; proxy_temp_path {self.root}/tmp; fastcgi_temp_path {self.root}/tmp;
  uwsgi_temp_path {self.root}/tmp; scgi_temp_path {self.root}/tmp;
  server {{ listen 127.0.0.1:{self.port}; root {self.root}/www; }}
}}
"""
        )
        (self.root / "tmp").mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.put("ping", b"ok")
        wait_http(f"http://127.0.0.1:{self.port}/ping")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Etcd:
    """One etcd member (Debian's etcd-server) on 127.0.0.1 with its data in a temp dir: the reference a KV user
    would otherwise pick. Driven through its v3 JSON gateway (``/v3/kv/range``, ``/v3/kv/put``, ``/v3/kv/txn``)."""

    port: int = 0
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bazaar-etcd-")))
    proc: subprocess.Popen[bytes] | None = None
    max_txn_ops: int = 10_000  # bulk loads in a few requests (etcd's own default is 128)
    max_request_bytes: int = 32 * 1024 * 1024

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Etcd:
        self.port = self.port or free_port()
        peer = free_port()
        cmd = [
            "etcd",
            "--name=bench",
            f"--data-dir={self.root / 'data'}",
            f"--listen-client-urls={self.base}",
            f"--advertise-client-urls={self.base}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=bench=http://127.0.0.1:{peer}",
            f"--max-txn-ops={self.max_txn_ops}",
            f"--max-request-bytes={self.max_request_bytes}",
            "--quota-backend-bytes=8589934592",
            "--log-level=error",
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.call("/v3/kv/range", {"key": b64("-")})
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("etcd did not come up in 30 s")

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=120) as r:
            answer: dict[str, Any] = json.loads(r.read())
            return answer

    def stop(self) -> None:
        stop_group(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)


def b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text.strip())
    if not m:
        return float("nan")
    return float(m.group(1)) * _UNIT[m.group(2)]


def wrk(
    url: str,
    *,
    duration: int = 10,
    connections: int = 32,
    threads: int = 1,
    script: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run wrk against a loopback URL and parse req/s, p50/p90/p99 latency, errors and non-2xx counts."""
    assert url.startswith("http://127.0.0.1:"), "loads go only to 127.0.0.1"
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    result: dict[str, Any] = {"url": url, "connections": connections, "duration_s": duration, "raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in", out)
    result["requests"] = int(m.group(1)) if m else 0
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        result[f"p{pct}_ms"] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return result


def fetch(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    assert url.startswith("http://127.0.0.1:")
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


@dataclass
class Context:
    """What a scenario gets: the running server, nginx, and helpers. ``rounds``: how many alternating rounds a
    comparison runs per side (app, reference, app, reference, ...)."""

    server: Server
    nginx: Nginx
    duration: int
    env: dict[str, str]
    notes: list[str] = field(default_factory=list)
    rounds: int = 3

    def manage(self, *args: str) -> str:
        return manage(*args, env=bench_env(self.env))

    def setup(self, *args: str) -> str:
        return setup(*args, env=bench_env(self.env))


@dataclass
class Scenario:
    name: str
    description: str
    run: Callable[[Context], dict[str, Any]]
    needs: tuple[str, ...] = ()  # e.g. ("postgres",) or ("redis",)
    app: str = "core"
    # "repeat": bench/run.py runs it ``rounds`` times and publishes the median run with the spread;
    # "own": the scenario alternates its own rounds against a reference (compare_with_nginx, etcd);
    # "once": too long to repeat (a 1M-row import); published with that caveat.
    rounds: str = "repeat"


def _median(values: list[float]) -> float:
    clean = [v for v in values if isinstance(v, int | float) and v == v]
    return float(statistics.median(clean)) if clean else float("nan")


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each wrk figure over several runs of the same load (req/s, p50, p99, errors summed)."""
    out: dict[str, Any] = {"runs": len(runs)}
    for key in ("rps", "p50_ms", "p75_ms", "p90_ms", "p99_ms"):
        out[key] = round(_median([r.get(key, float("nan")) for r in runs]), 3)
    for key in ("requests", "non_2xx", "socket_errors", "cache_misses"):
        if any(key in r for r in runs):
            out[key] = sum(int(r.get(key, 0)) for r in runs)
    out["rps_runs"] = [round(r.get("rps", 0.0), 1) for r in runs]
    out["rps_spread"] = [min(out["rps_runs"]), max(out["rps_runs"])] if runs else []
    for key in ("url", "connections", "duration_s"):
        if runs and key in runs[0]:
            out[key] = runs[0][key]
    return out


def alternate(
    sides: dict[str, Callable[[], dict[str, Any]]], rounds: int
) -> tuple[dict[str, dict[str, Any]], list[dict[str, float]]]:
    """Run each side's load in turn, ``rounds`` times, the order flipped every round (a, b, b, a, a, b, ...): the
    host's speed drifts over minutes, so only loads interleaved in time compare, and a side that always ran second
    would always meet the host a little later (a steady drift then biased every round's ratio the same way; flipped,
    it biases alternate rounds in opposite directions and the median cancels it). Returns each side's medians
    (``summarize_runs``) and the rounds' req/s per side (a ratio is taken within a round, where both sides met the
    same host)."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    per_round: list[dict[str, float]] = []
    for i in range(max(1, rounds)):
        this: dict[str, float] = {}
        for name, load in sides.items() if i % 2 == 0 else reversed(sides.items()):
            result = load()
            result.pop("raw", None)
            runs[name].append(result)
            this[name] = float(result.get("rps", 0.0))
        per_round.append(this)
    return {name: summarize_runs(r) for name, r in runs.items()}, per_round


def paired_ratio(per_round: list[dict[str, float]], top: str, bottom: str) -> dict[str, Any]:
    """The median and the spread of ``top / bottom`` taken round by round."""
    ratios = [r[top] / r[bottom] for r in per_round if r.get(bottom)]
    if not ratios:
        return {"median": None, "spread": [], "rounds": []}
    return {
        "median": round(float(statistics.median(ratios)), 4),
        "spread": [round(min(ratios), 4), round(max(ratios), 4)],
        "rounds": [round(x, 4) for x in ratios],
    }


def compare_with_nginx(
    ctx: Context,
    name: str,
    path: str,
    *,
    connections: int = 32,
    headers: dict[str, str] | None = None,
    warm: int = 3,
) -> dict[str, Any]:
    """Load ``path`` on the app server and the same bytes from nginx in alternating rounds (app, nginx, app, ...,
    ``ctx.rounds`` each); the ratio is the median of the rounds' paired ratios, published with its spread."""
    url = ctx.server.base + path
    status, body, _ = fetch(url, headers=headers)
    if status != 200:
        raise RuntimeError(f"{url} answered {status}")
    for _ in range(warm):
        fetch(url, headers=headers)
    static_url = ctx.nginx.put(f"{name}.bin", body)
    sides = {
        "app": lambda: wrk(url, duration=ctx.duration, connections=connections, headers=headers),
        "nginx": lambda: wrk(static_url, duration=ctx.duration, connections=connections),
    }
    medians, per_round = alternate(sides, ctx.rounds)
    ratio = paired_ratio(per_round, "app", "nginx")
    return {
        "bytes": len(body),
        "app": medians["app"],
        "nginx": medians["nginx"],
        "ratio_to_nginx": ratio["median"],
        "ratio_spread": ratio["spread"],
        "ratio_rounds": ratio["rounds"],
        "rounds": len(per_round),
    }


# Host busyness, system-wide (/proc/stat covers every process on this VM, and steal the hypervisor's other
# guests): read before each scenario while our servers are idle, and sampled while it runs.
NOISY_BUSY_BEFORE = 0.15  # more than 15 % of all CPUs busy while nothing of ours runs
NOISY_STEAL = 0.05  # more than 5 % of CPU time taken by the hypervisor


def _cpu_times() -> list[int]:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal


def _cpu_share(a: list[int], b: list[int]) -> dict[str, float]:
    delta = [y - x for x, y in zip(a, b, strict=True)]
    total = sum(delta) or 1
    idle = delta[3] + delta[4]
    return {
        "busy": round((total - idle) / total, 3),
        "iowait": round(delta[4] / total, 3),
        "steal": round(delta[7] / total, 3),
    }


def _loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def host_sample(seconds: float = 1.0) -> dict[str, float]:
    """System-wide CPU shares over ``seconds`` (busy, iowait, steal) and the 1-minute load average."""
    a = _cpu_times()
    time.sleep(seconds)
    return {**_cpu_share(a, _cpu_times()), "load1": _loadavg()}


class HostMonitor:
    """Samples system-wide CPU use once a second in a thread while a scenario runs."""

    def __init__(self) -> None:
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = _cpu_times()
        while not self._stop.wait(1.0):
            now = _cpu_times()
            self.samples.append({**_cpu_share(last, now), "load1": _loadavg()})
            last = now

    def __enter__(self) -> HostMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def summary(self) -> dict[str, float]:
        if not self.samples:
            return {}
        return {
            "busy_median": round(_median([s["busy"] for s in self.samples]), 3),
            "steal_max": max(s["steal"] for s in self.samples),
            "load1_max": max(s["load1"] for s in self.samples),
            "samples": len(self.samples),
        }


def host_state(before: dict[str, float], during: dict[str, float]) -> dict[str, Any]:
    """Before/during figures and whether the sitting was noisy (other load on the host, or steal)."""
    why = []
    if before.get("busy", 0) > NOISY_BUSY_BEFORE:
        why.append(f"{before['busy']:.0%} of the CPUs busy before the scenario, with our servers idle")
    steal = max(before.get("steal", 0), during.get("steal_max", 0))
    if steal > NOISY_STEAL:
        why.append(f"steal up to {steal:.0%}")
    return {"before": before, "during": during, "noisy": bool(why), "why": why}


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def plot(name: str, title: str, bars: dict[str, float], ylabel: str = "requests/s") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    labels = list(bars)
    values = [bars[k] for k in labels]
    colors = ["#b4461b" if "nginx" not in k else "#777777" for k in labels]
    ax.barh(labels, values, color=colors)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,.0f}", va="center", fontsize=9)
    ax.set_xlabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.margins(x=0.18)
    fig.tight_layout()
    path = RESULTS / f"{name}.png"
    fig.savefig(path)
    plt.close(fig)
    return path
