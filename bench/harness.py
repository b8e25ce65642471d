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
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PY = sys.executable


def ensure_tools() -> None:
    """Install wrk and nginx from Debian's packages when missing (the harness needs both)."""
    missing = [pkg for tool, pkg in (("wrk", "wrk"), ("nginx", "nginx-light")) if not shutil.which(tool)]
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
            "DJANGO_SETTINGS_MODULE": "bazaar.config.settings",
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


def manage(*args: str, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env or bench_env(), capture_output=True, text=True
    )
    if r.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
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
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None


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
    """What a scenario gets: the running server, nginx, and helpers."""

    server: Server
    nginx: Nginx
    duration: int
    env: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def manage(self, *args: str) -> str:
        return manage(*args, env=bench_env(self.env))


@dataclass
class Scenario:
    name: str
    description: str
    run: Callable[[Context], dict[str, Any]]
    needs: tuple[str, ...] = ()  # e.g. ("postgres",) or ("redis",)
    app: str = "core"


def compare_with_nginx(
    ctx: Context,
    name: str,
    path: str,
    *,
    connections: int = 32,
    headers: dict[str, str] | None = None,
    warm: int = 3,
) -> dict[str, Any]:
    """Load ``path`` on the app server and the same bytes from nginx, side by side in one run."""
    url = ctx.server.base + path
    status, body, _ = fetch(url, headers=headers)
    if status != 200:
        raise RuntimeError(f"{url} answered {status}")
    for _ in range(warm):
        fetch(url, headers=headers)
    static_url = ctx.nginx.put(f"{name}.bin", body)
    app = wrk(url, duration=ctx.duration, connections=connections, headers=headers)
    ref = wrk(static_url, duration=ctx.duration, connections=connections)
    return {
        "bytes": len(body),
        "app": app,
        "nginx": ref,
        "ratio_to_nginx": round(app["rps"] / ref["rps"], 4) if ref["rps"] else None,
    }


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


def asdict_safe(obj: Any) -> Any:
    return asdict(obj)
