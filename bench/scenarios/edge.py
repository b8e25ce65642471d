"""The scaled-out topology: the store page (50 products) through nginx in front of two app servers.

* ``edge_store_page``: two app servers (deploy/serve.py, 1 worker each, as ``make stack`` runs them) behind nginx
  rendered from deploy/nginx.conf.tmpl, measured twice in one run:
  (1) with the edge cache (the page is served from nginx's cache, purged by the app on writes), against nginx
      serving the very same bytes as a static file (target ≥ 0.5×); two interleaved runs each, best of each;
  (2) the same nginx without the edge cache (``proxy_cache off``): every request load-balanced to an app server
      (their fast path answers from Redis) — the "scaled-out topology" number.
  Both nginx instances run one worker process and no access log, like the static reference.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.harness import ROOT, Context, Scenario, Server, fetch, free_port, wait_http, wrk

STORE = "/s/demo-shop/"


def stack_module() -> ModuleType:
    """deploy/stack.py (a script, not a package) loaded as a module: its ``nginx_conf`` renders the real config."""
    spec = importlib.util.spec_from_file_location("bazaar_deploy_stack", ROOT / "deploy" / "stack.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _FrontNginx:
    """deploy/nginx.conf.tmpl in front of ``app_ports``, in a temporary state directory."""

    def __init__(self, app_ports: list[int], *, edge: bool) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="bazaar-edge-bench-"))
        self.state.chmod(0o755)  # nginx workers run unprivileged
        self.port = free_port()
        conf = stack_module().nginx_conf(
            self.state,
            port=self.port,
            purge_port=free_port(),
            app_ports=app_ports,
            edge=edge,
            worker_processes="1",
            access_log="off",
        )
        (self.state / "nginx.conf").write_text(conf)
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> _FrontNginx:
        subprocess.run(["nginx", "-c", str(self.state / "nginx.conf"), "-p", str(self.state)], check=True)
        wait_http(self.base + "/healthz")
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(
            ["nginx", "-c", str(self.state / "nginx.conf"), "-p", str(self.state), "-s", "quit"], check=False
        )
        for _ in range(50):
            if not (self.state / "nginx.pid").exists():
                break
            time.sleep(0.1)
        shutil.rmtree(self.state, ignore_errors=True)


def _x_cache_status(url: str) -> str:
    _, _, headers = fetch(url)
    return {k.lower(): v for k, v in headers.items()}.get("x-cache-status", "")


def warm_edge(url: str, hits: int) -> bytes:
    """The store page's bytes once the edge serves it from its cache (fetched ``hits`` more times, then checked)."""
    status, body, _ = fetch(url)
    if status != 200:
        raise RuntimeError(f"{url} answered {status}")
    for _ in range(hits):
        fetch(url)
    if _x_cache_status(url) != "HIT":
        raise RuntimeError("the edge cache does not serve the store page")
    return body


def edge_store_page(ctx: Context) -> dict[str, Any]:
    apps = [Server(kind=ctx.server.kind, workers=1, threads=ctx.server.threads).start() for _ in range(2)]
    try:
        ports = [a.port for a in apps]
        with _FrontNginx(ports, edge=True) as front:
            url = front.base + STORE
            body = warm_edge(url, 3)
            static_url = ctx.nginx.put("edge_store_page.bin", body)
            # Interleaved, twice each, best of each: the machine is shared, and a neighbour's burst during one
            # run should not decide the ratio. Every run is kept in the results.
            edge_runs, ref_runs = [], []
            for _ in range(2):
                edge_runs.append(wrk(url, duration=ctx.duration, connections=32))
                ref_runs.append(wrk(static_url, duration=ctx.duration, connections=32))
            edge = max(edge_runs, key=lambda r: r["rps"])
            ref = max(ref_runs, key=lambda r: r["rps"])
            served_by_edge = _x_cache_status(url)
        with _FrontNginx(ports, edge=False) as front:
            url = front.base + STORE
            for _ in range(20):
                fetch(url)
            if _x_cache_status(url) != "":
                raise RuntimeError("the plain topology answered from a cache")
            plain = wrk(url, duration=ctx.duration, connections=32)
    finally:
        for a in apps:
            a.stop()
    ratio = round(edge["rps"] / ref["rps"], 4) if ref["rps"] else None
    return {
        "bytes": len(body),
        "products_on_page": body.count(b"data-product="),
        "app": edge,
        "nginx": ref,
        "ratio_to_nginx": ratio,
        "edge_x_cache_status_after_load": served_by_edge,
        "edge_runs_rps": [r["rps"] for r in edge_runs],
        "nginx_runs_rps": [r["rps"] for r in ref_runs],
        "scaled_out_no_edge": plain,
        "scaled_out_no_edge_ratio_to_nginx": round(plain["rps"] / ref["rps"], 4) if ref["rps"] else None,
        "edge_over_scaled_out": round(edge["rps"] / plain["rps"], 2) if plain["rps"] else None,
        "target": "edge >= 0.5x nginx static, same bytes, same run",
        "target_met": bool(ratio and ratio >= 0.5),
        "bars": {"no edge cache: proxied to 2 app servers (1 worker each)": plain["rps"]},
    }


SCENARIOS = [
    Scenario(
        "edge_store_page",
        "store page, 50 products, edge cache vs proxied to 2 app servers",
        edge_store_page,
        needs=("redis",),
        app="edge cache in front of 2 app servers",
        rounds="own",
    ),
]
