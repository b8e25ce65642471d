"""`make stack` / `make stack-down`: the scaled-out topology on this machine, all on loopback.

    PostgreSQL ─┐
    Redis ──────┼── app server A (:8001) ─┐     Redis: a primary, a replica and three Sentinels (deploy/ha.py)
                ├── app server B (:8002) ─┼── nginx (:8080)  load balancer, static files, edge cache
                ├── Celery worker         │     (:8090 purges, loopback only)
                └── Celery beat           │

`up` starts PostgreSQL only if it is down (and remembers that it did), starts its own Redis primary + replica +
Sentinels (``STACK_REDIS_PORTS``, ``STACK_SENTINEL_PORTS``; ``STACK_REDIS_HA=0`` uses the machine's Redis on 6379
instead, started if down), creates the `bazaar_stack` database, migrates, loads demo data, then starts the rest. `down` stops exactly what `up` started.
State (pids, logs, what was started, the edge cache) lives in var/stack/ (``STACK_STATE``). The app servers and
the worker purge the nginx edge cache after every commit that changes a cached page (``EDGE_PURGE_URL``).
Each app server also runs a watch server on its port + 100 (``STACK_WATCH_PORT_OFFSET``; :8101, :8102):
nginx sends ``GET /api/kv/watch`` there (bazaar.kvstore.watch_server).
Ports and the database name can be moved with ``STACK_PORT``, ``STACK_APP_PORTS``, ``STACK_PURGE_PORT`` and
``STACK_DB`` (``STACK_APPS=N``: N app servers on consecutive ports from the first of ``STACK_APP_PORTS``); the
cache key prefix and the Celery queue follow the database name, so two stacks on different databases never see
each other's entries or tasks.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
import ha  # noqa: E402  (deploy/ha.py, beside this script: not a package)

STATE = Path(os.environ.get("STACK_STATE") or ROOT / "var" / "stack")
PY = sys.executable
HOST = "127.0.0.1"
APP_PORTS = [int(p) for p in os.environ.get("STACK_APP_PORTS", "8001,8002").split(",")]
# STACK_APPS=N: N app servers on consecutive ports from the first of APP_PORTS (the capacity curve: 1, 2, 4).
if os.environ.get("STACK_APPS"):
    APP_PORTS = [APP_PORTS[0] + i for i in range(int(os.environ["STACK_APPS"]))]
NGINX_PORT = int(os.environ.get("STACK_PORT", "8080"))
PURGE_PORT = int(os.environ.get("STACK_PURGE_PORT", "8090"))
DB_NAME = os.environ.get("STACK_DB", "bazaar_stack")
REDIS_HA = os.environ.get("STACK_REDIS_HA", "1") != "0"
REDIS_PORTS = [int(p) for p in os.environ.get("STACK_REDIS_PORTS", "6380,6381").split(",")]
# PgBouncer between the app servers and PostgreSQL (STACK_PGBOUNCER=0: none). Session pooling by default: why, and
# the measurement of transaction pooling, in docs/design-notes.md ("Issue 20").
PGBOUNCER = os.environ.get("STACK_PGBOUNCER", "1") != "0"
PGBOUNCER_PORT = int(os.environ.get("STACK_PGBOUNCER_PORT", "6432"))
PGBOUNCER_MODE = os.environ.get("STACK_PGBOUNCER_MODE", "session")
PGBOUNCER_POOL = int(os.environ.get("STACK_PGBOUNCER_POOL", "20"))
# STACK_PG_REPLICA=1: the stack's own PostgreSQL primary + hot-standby replica (deploy/ha.py) on STACK_PG_PORTS instead
# of the machine's PostgreSQL; the app servers read replica-safe surfaces from the replica (DATABASE_REPLICA_URL).
PG_REPLICA = os.environ.get("STACK_PG_REPLICA", "0") == "1"
PG_PORTS = [int(p) for p in os.environ.get("STACK_PG_PORTS", "5440,5441").split(",")]
PG_PORT = PG_PORTS[0] if PG_REPLICA else 5432
SENTINEL_PORTS = [int(p) for p in os.environ.get("STACK_SENTINEL_PORTS", "26379,26479,26579").split(",")]
# Each app server runs a watch server (GET /api/kv/watch, ASGI) on its port + this; nginx routes the watch there.
WATCH_PORT_OFFSET = int(os.environ.get("STACK_WATCH_PORT_OFFSET", "100"))
PURGE_MODULE = Path("/usr/lib/nginx/modules/ngx_http_cache_purge_module.so")


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _pg_up() -> bool:
    return _run(["pg_isready", "-h", HOST, "-p", str(PG_PORT), "-q"]).returncode == 0


def _redis_up() -> bool:
    return _run(["redis-cli", "-h", HOST, "-p", "6379", "ping"]).stdout.strip() == "PONG"


def _wait(check: Any, what: str, timeout: float = 30) -> None:
    try:
        ha.wait_for(check, what, timeout)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def redis_ha() -> Any:
    """The stack's Redis primary + replica + Sentinels (deploy/ha.py, beside this script)."""
    return ha.RedisHA(STATE / "redis-ha", REDIS_PORTS[0], REDIS_PORTS[1], SENTINEL_PORTS)


def redis_urls() -> tuple[str, str]:
    """(cache and rate limits, Celery broker): through the Sentinels unless STACK_REDIS_HA=0."""
    if REDIS_HA:
        redis = redis_ha()
        return redis.url(2), redis.url(3)
    return f"redis://{HOST}:6379/2", f"redis://{HOST}:6379/3"


def stack_env() -> dict[str, str]:
    STATE.mkdir(parents=True, exist_ok=True)
    secret_file = STATE / "secret_key"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(50))
    env = dict(os.environ)
    cache_url, broker_url = redis_urls()
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bazaar.config.settings.base",
            "DATABASE_URL": f"postgres://postgres@{HOST}:{PG_PORT}/{DB_NAME}",
            "REDIS_URL": cache_url,
            "CELERY_BROKER_URL": broker_url,
            "CELERY_TASK_DEFAULT_QUEUE": f"bazaar-stack-{DB_NAME}",
            "BAZAAR_CACHE_PREFIX": f"stack-{DB_NAME}",
            "EDGE_PURGE_URL": f"http://{HOST}:{PURGE_PORT}",
            "TRUSTED_PROXIES": HOST,  # nginx: the client address comes from its X-Forwarded-For
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secret_file.read_text().strip(),
            "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
            "DJANGO_CSRF_TRUSTED_ORIGINS": f"http://{HOST}:{NGINX_PORT},http://localhost:{NGINX_PORT}",
            "DJANGO_HTTPS": "false",
            "BAZAAR_VAR_DIR": str(STATE / "var"),
            "MEDIA_ROOT": str(STATE / "media"),
            "SITE_URL": f"http://{HOST}:{NGINX_PORT}",  # links that leave the site (e-mails, share link, QR)
            "PROMETHEUS_MULTIPROC_DIR": "",
        }
    )
    return env


def ensure_purge_module() -> Path:
    """The edge cache is purged with Debian's cache-purge module: install it when missing (needs root)."""
    if not PURGE_MODULE.exists():
        if os.geteuid() != 0:
            raise SystemExit("the edge cache needs apt-get install libnginx-mod-http-cache-purge")
        print("installing libnginx-mod-http-cache-purge ...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "libnginx-mod-http-cache-purge"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return PURGE_MODULE


def edge_location() -> str:
    """The edge-cached location's regex, rendered from the apps' declared surfaces (bazaar.core.surfaces)."""
    import django
    from django.apps import apps

    if not apps.ready:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bazaar.config.settings.base")
        sys.path.insert(0, str(ROOT))
        django.setup()
    from bazaar.core import surfaces

    return surfaces.nginx_location()


_STATIC_FILES = """    # Static files carry a content hash in their names (ManifestStaticFilesStorage): cache them for a year.
    location /static/ {{
      alias {static_root}/;
      add_header Cache-Control "public, max-age=31536000, immutable";
      access_log off;
    }}"""
_STATIC_PROXIED = """    # Static files are served by WhiteNoise in the web image (hashed names, far-future Cache-Control).
    location /static/ {
      proxy_pass http://bazaar_app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      access_log off;
    }"""


def _render(**values: object) -> str:
    location = edge_location()  # sets Django up
    from bazaar.kvstore.watch import WATCH_PATH

    template = (ROOT / "deploy" / "nginx.conf.tmpl").read_text()
    return template.format(edge_location=location, watch_path=WATCH_PATH, **values)


def watch_port(app_port: int) -> int:
    """The port of the watch server beside the app server on ``app_port`` (deploy/serve.py --watch-port)."""
    return app_port + WATCH_PORT_OFFSET


def nginx_conf(
    state: Path,
    *,
    port: int,
    purge_port: int,
    app_ports: list[int],
    watch_ports: list[int] | None = None,
    edge: bool = True,
    worker_processes: str = "auto",
    access_log: str | None = None,
) -> str:
    """deploy/nginx.conf.tmpl rendered for app servers on ``app_ports`` (their watch servers on ``watch_ports``,
    by default each app port + WATCH_PORT_OFFSET); ``edge=False`` turns the edge cache off."""
    watch_ports = watch_ports or [watch_port(p) for p in app_ports]
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (state / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    return _render(
        rendered_for="Rendered for make stack (deploy/stack.py).",
        purge_module=ensure_purge_module(),
        worker_processes=worker_processes,
        daemon="daemon on;",
        pid=f"{state}/nginx.pid",
        error_log=f"{state}/nginx-error.log",
        temp_paths=(
            f"  client_body_temp_path {state}/tmp/body; proxy_temp_path {state}/tmp/proxy;\n"
            f"  fastcgi_temp_path {state}/tmp/fastcgi; uwsgi_temp_path {state}/tmp/uwsgi; "
            f"scgi_temp_path {state}/tmp/scgi;\n"
        ),
        edge_dir=f"{state}/edge",
        access_log=access_log or f"{state}/nginx-access.log",
        listen=f"{HOST}:{port}",
        purge_listen=f"{HOST}:{purge_port}",
        purge_self=f"{HOST}:{purge_port}",
        purge_allow="    allow 127.0.0.1;",
        upstreams="\n".join(f"    server {HOST}:{p} max_fails=0;" for p in app_ports),
        watch_upstreams="\n".join(f"    server {HOST}:{p} max_fails=0;" for p in watch_ports),
        static_location=_STATIC_FILES.format(static_root=ROOT / "staticfiles"),
        media_root=state / "media",
        edge_zone="edge" if edge else "off",
        edge_validity="10m",
        session_cookie="sessionid",
    )


def compose_conf() -> str:
    """deploy/nginx.conf: the same template for the nginx container of deploy/docker-compose.yml."""
    return _render(
        rendered_for="Rendered for docker-compose (the image of deploy/nginx.Dockerfile): do not edit by hand.",
        purge_module="modules/ngx_http_cache_purge_module.so",
        worker_processes="auto",
        daemon="",
        pid="/run/nginx.pid",
        error_log="/dev/stderr",
        temp_paths="",
        edge_dir="/var/cache/nginx/edge",
        access_log="/dev/stdout",
        listen="80",
        purge_listen="8081",
        purge_self="127.0.0.1:8081",
        # Not published; only loopback and the private ranges compose networks use may call it.
        purge_allow="    allow 127.0.0.1;\n    allow 10.0.0.0/8;\n    allow 172.16.0.0/12;\n    allow 192.168.0.0/16;",
        upstreams="    server web:8000;",
        watch_upstreams="    server web:8100;",
        static_location=_STATIC_PROXIED,
        media_root="/media",
        edge_zone="edge",
        edge_validity="10m",
        session_cookie="sessionid",
    )


def write_compose_conf() -> None:
    (ROOT / "deploy" / "nginx.conf").write_text(compose_conf())
    print("wrote deploy/nginx.conf")


def _spawn(name: str, cmd: list[str], env: dict[str, str]) -> int:
    log = open(STATE / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return proc.pid


def start_pgbouncer(env: dict[str, str]) -> int:
    """PgBouncer for the app servers (the Celery worker and beat connect directly: a trading import holds a
    session advisory lock for its whole run). The statement timeout moves onto the database (ha.pgbouncer_conf)."""
    if not shutil.which("pgbouncer"):
        raise SystemExit("the stack's pooler needs apt-get install pgbouncer (or STACK_PGBOUNCER=0)")
    timeout_ms = int(float(env.get("DATABASE_STATEMENT_TIMEOUT", "5")) * 1000)
    _run(["psql", "-h", HOST, "-p", str(PG_PORT), "-U", "postgres", "-d", DB_NAME, "-qc",
          f'ALTER DATABASE "{DB_NAME}" SET statement_timeout = {timeout_ms}'])  # fmt: skip
    ini = ha.pgbouncer_conf(
        STATE / "pgbouncer",
        port=PGBOUNCER_PORT,
        db=DB_NAME,
        pg_port=PG_PORT,
        mode=PGBOUNCER_MODE,
        pool_size=PGBOUNCER_POOL,
    )
    pid = _spawn("pgbouncer", ha.pgbouncer_argv(ini), env)
    _wait(lambda: ha.pg_ready(PGBOUNCER_PORT), "PgBouncer")
    return pid


def up() -> None:
    if (STATE / "state.json").exists():
        raise SystemExit("a stack is already running (make stack-down first)")
    STATE.mkdir(parents=True, exist_ok=True)
    ensure_purge_module()
    state: dict[str, Any] = {"started_services": [], "pids": {}}
    if PG_REPLICA:
        state["pg_ha"] = True
        (STATE / "state.json").write_text(json.dumps(state))
        ha.pg_primary(STATE / "pg-primary", PG_PORT)
    elif not _pg_up():
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True)
        _wait(_pg_up, "PostgreSQL")
        state["started_services"].append("postgresql")
    if REDIS_HA:
        (STATE / "state.json").write_text(
            json.dumps(state)
        )  # `down` stops what started if a later step fails
        redis = redis_ha()
        try:
            redis.start()
        finally:
            state["pids"].update(redis.pids)
            (STATE / "state.json").write_text(json.dumps(state))
    elif not _redis_up():
        Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                HOST,
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                "/var/lib/redis",
                "--logfile",
                str(STATE / "redis.log"),
            ],
            check=True,
        )
        _wait(_redis_up, "Redis")
        state["started_services"].append("redis")
    (STATE / "state.json").write_text(json.dumps(state))
    _run(["createdb", "-h", HOST, "-p", str(PG_PORT), "-U", "postgres", DB_NAME])  # "already exists" is fine
    env = stack_env()
    for args in (["migrate", "--noinput", "-v", "0"], ["collectstatic", "--noinput", "-v", "0"], ["demo"]):
        r = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"manage.py {args[0]} failed:\n{r.stdout}\n{r.stderr}")
        if args[0] == "demo":
            (STATE / "demo.txt").write_text(r.stdout)
    bindir = str(Path(PY).parent)
    app_db: dict[str, str] = {}
    if (
        PG_REPLICA
    ):  # a hot standby of the migrated, seeded primary; replica-safe reads go there (core.replica)
        ha.pg_standby(
            STATE / "pg-replica", PG_PORTS[1], PG_PORT, os.environ.get("STACK_PG_REPLICA_DELAY", "0")
        )
        app_db["DATABASE_REPLICA_URL"] = f"postgres://postgres@{HOST}:{PG_PORTS[1]}/{DB_NAME}"
    if PGBOUNCER:
        state["pids"]["pgbouncer"] = start_pgbouncer(env)
        (STATE / "state.json").write_text(json.dumps(state))
        app_db["DATABASE_URL"] = f"postgres://postgres@{HOST}:{PGBOUNCER_PORT}/{DB_NAME}"
        if PGBOUNCER_MODE == "transaction":
            # A server connection serves another client after each transaction: nothing may outlive one.
            app_db.update(
                {"DATABASE_PREPARED_STATEMENTS": "false", "DATABASE_DISABLE_SERVER_SIDE_CURSORS": "true"}
            )
    for i, port in enumerate(APP_PORTS):
        name = f"app{chr(ord('a') + i)}"
        app_env = {**env, **app_db, "PROMETHEUS_MULTIPROC_DIR": str(STATE / f"metrics-{name}")}
        state["pids"][name] = _spawn(
            name,
            [
                PY,
                "deploy/serve.py",
                "--no-worker",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                "1",
                "--watch-port",
                str(watch_port(port)),
            ],
            app_env,
        )
    state["pids"]["worker"] = _spawn(
        "worker", [f"{bindir}/celery", "-A", "bazaar.config", "worker", "-l", "info", "-c", "2"], env
    )
    state["pids"]["beat"] = _spawn(
        "beat",
        [
            f"{bindir}/celery",
            "-A",
            "bazaar.config",
            "beat",
            "-l",
            "info",
            "-s",
            str(STATE / "celerybeat-schedule"),
        ],
        env,
    )
    (STATE / "state.json").write_text(json.dumps(state))
    for port in APP_PORTS:
        _wait(lambda p=port: _http_ok(f"http://{HOST}:{p}/healthz"), f"app server :{port}")
    # A new stack never serves pages cached by an earlier one (other code, other database).
    shutil.rmtree(STATE / "edge", ignore_errors=True)
    conf = nginx_conf(STATE, port=NGINX_PORT, purge_port=PURGE_PORT, app_ports=APP_PORTS)
    (STATE / "nginx.conf").write_text(conf)
    for p in (ROOT, ROOT / "staticfiles"):
        p.chmod(p.stat().st_mode | 0o005)
    subprocess.run(["nginx", "-c", str(STATE / "nginx.conf"), "-p", str(STATE)], check=True)
    state["nginx"] = True
    (STATE / "state.json").write_text(json.dumps(state))
    _wait(lambda: _http_ok(f"http://{HOST}:{NGINX_PORT}/readyz"), "nginx")
    print(
        f"stack up: http://{HOST}:{NGINX_PORT}/ (nginx) -> app servers "
        + ", ".join(f":{p}" for p in APP_PORTS)
    )
    print(f"edge cache purges: http://{HOST}:{PURGE_PORT}/<path> (loopback only)")
    print(f"logs and state: {STATE}")
    apps = ",".join(f"http://{HOST}:{p}" for p in APP_PORTS)
    print(
        f"stack tests: BAZAAR_STACK_URL=http://{HOST}:{NGINX_PORT} BAZAAR_STACK_APPS={apps} make stack-test"
    )
    print((STATE / "demo.txt").read_text())


def down() -> None:
    path = STATE / "state.json"
    if not path.exists():
        print("no stack running")
        return
    state = json.loads(path.read_text())
    if state.get("nginx") and (STATE / "nginx.pid").exists():
        subprocess.run(
            ["nginx", "-c", str(STATE / "nginx.conf"), "-p", str(STATE), "-s", "quit"], check=False
        )
    for name, pid in state.get("pids", {}).items():
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(50):
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.killpg(pid, signal.SIGKILL)
        print(f"stopped {name}")
    if "redis" in state["started_services"]:
        _run(["redis-cli", "-h", HOST, "-p", "6379", "shutdown", "nosave"])
        print("stopped redis (started by make stack)")
    if state.get("pg_ha"):
        for home in ("pg-replica", "pg-primary"):
            ha.pg_stop(STATE / home)
            shutil.rmtree(STATE / home, ignore_errors=True)
        print("stopped the stack's PostgreSQL primary and replica")
    if "postgresql" in state["started_services"]:
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        _run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop"])
        print("stopped postgresql (started by make stack)")
    path.unlink()
    shutil.rmtree(STATE / "tmp", ignore_errors=True)


if __name__ == "__main__":
    {"up": up, "down": down, "compose-conf": write_compose_conf}[sys.argv[1] if len(sys.argv) > 1 else "up"]()
