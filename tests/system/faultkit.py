"""Fault-test kit: private Redis and PostgreSQL instances, a seeded world, a production app server, a Celery
worker, and a small threaded HTTP load driver that records every acknowledged write.

Everything runs on 127.0.0.1 on free ports and is stopped by whoever started it; the machine's shared
PostgreSQL/Redis/RabbitMQ are never touched (the broker is used only through a private queue).
Used by ``test_faults.py``; the ``seed`` entry point (``python -m tests.system.faultkit seed N``) runs in
a subprocess against the private database.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Server, bench_env, free_port

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def missing(*binaries: str) -> list[str]:
    return [b for b in binaries if not (shutil.which(b) or os.path.exists(b))]


def _wait(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    redis_ha_module().wait_for(check, what, timeout)


# --- Redis ------------------------------------------------------------------------------------------------


@dataclass
class PrivateRedis:
    """A redis-server subprocess on a free port. ``stop(save=True)`` persists the data set so that ``start()``
    brings back the very entries that were cached before the outage (the hard case for staleness)."""

    port: int = 0
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bazaar-faults-redis-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except (redis.RedisError, OSError):
            return False

    def start(self) -> PrivateRedis:
        self.port = self.port or free_port()
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--dbfilename",
                "dump.rdb",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait(self.ping, f"redis-server :{self.port}")
        return self

    def stop(self, save: bool = True) -> None:
        """Stop the server hard (SIGKILL), after writing its data set to disk when ``save``."""
        import redis

        if self.proc is None or self.proc.poll() is not None:
            return
        if save:
            redis.Redis(port=self.port, socket_timeout=5).save()
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        self.stop(save=False)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- PostgreSQL -------------------------------------------------------------------------------------------


def pg_bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return os.path.dirname(found[-1])
    ctl = shutil.which("pg_ctl")
    return os.path.dirname(ctl) if ctl else None


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) in a temp dir on a free port. PostgreSQL refuses to run
    as root, so as root the cluster belongs to (and runs as) the ``postgres`` user."""

    bindir: str
    port: int = 0
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bazaar-faults-pg-")))

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [os.path.join(self.bindir, cmd[0]), *cmd[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)

    def url(self, db: str = "bazaar") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def init(self) -> PrivatePostgres:
        self.port = self.port or free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        return self

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=on -c max_connections=60"
        )
        self._run(
            "pg_ctl", "-D", str(self.dir / "data"), "-o", opts, "-l", str(self.dir / "log"), "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop", check=False)

    def _pids(self) -> list[int]:
        """The postmaster and every process it started (backends, checkpointer, WAL writer, ...)."""
        postmaster = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(postmaster)], capture_output=True, text=True)
        return [postmaster, *(int(x) for x in out.stdout.split())]

    def pause(self) -> None:
        """SIGSTOP the whole cluster, as a stuck disk or a frozen VM does: connections stay open, the kernel
        still acknowledges every packet, nothing answers. Only ever this private cluster."""
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGCONT)

    def createdb(self, name: str) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def query(self, sql: str, params: Any = None, db: str = "bazaar") -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url(db), autocommit=True, connect_timeout=5) as conn:
            return list(conn.execute(sql, params).fetchall())

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def streaming_replica(primary: PrivatePostgres, apply_delay: str = "0") -> PrivatePostgres:
    """A hot standby of ``primary`` (pg_basebackup -R, streaming), replaying ``apply_delay`` behind it."""
    replica = PrivatePostgres(primary.bindir)
    replica.port = free_port()
    if os.geteuid() == 0:
        shutil.chown(replica.dir, "postgres", "postgres")
    replica._run(
        "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
        "-D", str(replica.dir / "data"), "-R", "-X", "stream", "-c", "fast", "--no-sync",
    )  # fmt: skip
    with open(replica.dir / "data" / "postgresql.auto.conf", "a") as conf:
        conf.write(f"hot_standby = on\nrecovery_min_apply_delay = '{apply_delay}'\n")
    replica.start()
    return replica


# --- the seeded world -------------------------------------------------------------------------------------


def manage_env(database_url: str, redis_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return bench_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": "",
            "BAZAAR_VAR_DIR": str(ROOT / "var" / "faults"),
            **(extra or {}),
        }
    )


def run_py(args: list[str], env: dict[str, str]) -> str:
    r = subprocess.run([PY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    return r.stdout


def seed_world(threads: int, pool: int) -> dict[str, Any]:
    """Create what the load needs, through the services: a staff token, a shop with a product, a rentals title
    with copies and one customer per load thread, two trainers and ``pool`` pokemon per thread, a KV tenant."""
    import io
    from decimal import Decimal

    from bazaar.accounts.models import User
    from bazaar.accounts.services import token_create
    from bazaar.kvstore.services import apikey_create, entry_set, tenant_create
    from bazaar.rentals.services import copies_add, customer_create, title_create
    from bazaar.storefront.services import product_create, vendor_signup
    from bazaar.trading.services import import_csv

    staff = User(username="faults-staff", email="staff@example.com", is_staff=True, is_superuser=True)
    staff.set_password("Lantern-Quarry-Basil-77")
    staff.save()
    token = token_create(user=staff, name="faults").secret
    shop = vendor_signup(
        username="faults-vendor",
        password="Tamarind-Kettle-Orbit-42",
        email="vendor@example.com",
        shop_name="Fault Shop",
        slug="fault-shop",
    )
    product = product_create(
        owner=shop.owner, name="Tea", mrp=Decimal("12.00"), price=Decimal("10.00"), stock=10_000_000
    )
    title = title_create(title="Load and Faults", author="Bazaar", copies=0)
    for _ in range(8):
        copies_add(title_id=title.pk, count=500)
    customers = [customer_create(name=f"Load Customer {i}").pk for i in range(threads)]
    trainers = "id,firstName,lastName,dateOfBirth\n" + "".join(
        f"fa{t},A,Thread{t},01-01-1990\nfb{t},B,Thread{t},01-01-1990\n" for t in range(threads)
    )
    import_csv(source=io.BytesIO(trainers.encode()), kind="trainers")
    pokemon = "id,nickname,species,level,owner,dateOfOwnership\n" + "".join(
        f"fp{t}-{i},N,Pikachu,5,fa{t},01-01-2020\n" for t in range(threads) for i in range(pool)
    )
    import_csv(source=io.BytesIO(pokemon.encode()), kind="pokemon")
    tenant = tenant_create(slug="faults")
    kv_key = apikey_create(tenant_id=tenant.pk, name="faults").secret
    for t in range(threads):
        entry_set(tenant_id=tenant.pk, key=f"hot-{t}", value=0)
    return {
        "token": token,
        "slug": shop.slug,
        "product_id": product.pk,
        "title_id": title.pk,
        "customers": customers,
        "tenant_id": tenant.pk,
        "kv_key": kv_key,
        "pool": pool,
    }


@dataclass
class World:
    """Private PostgreSQL + Redis, migrated and seeded, and one production server (granian, 2 workers)."""

    pg: PrivatePostgres
    redis: PrivateRedis
    server: Server
    data: dict[str, Any]
    broker_queue: str = ""

    @property
    def port(self) -> int:
        return self.server.port


SERVER_ENV = {
    # The load rents without returning: the desk limits would otherwise refuse most rents of one customer.
    "RENTALS_MAX_OPEN_RENTALS": "1000000",
    "RENTALS_MAX_BALANCE": "1000000000",
    "DATABASE_CONNECT_TIMEOUT": "2",
    "TRADING_IMPORT_DIR": str(ROOT / "var" / "faults" / "imports"),
}


def _server_env(
    pg: PrivatePostgres, redis_url: str, broker_url: str = "", broker_queue: str = ""
) -> dict[str, str]:
    return {
        "DATABASE_URL": pg.url(),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": broker_queue or "faults-unused",
        "BAZAAR_NO_WORKER": "1",
        "BAZAAR_VAR_DIR": str(ROOT / "var" / "faults"),
        **SERVER_ENV,
    }


def _prepare(pg: PrivatePostgres, redis_url: str, threads: int, pool: int) -> dict[str, Any]:
    """Start ``pg``, migrate, collect static and seed; returns what the load needs."""
    pg.start()
    pg.createdb("bazaar")
    env = manage_env(pg.url(), redis_url, SERVER_ENV)
    run_py(["manage.py", "migrate", "--noinput", "-v", "0"], env)
    # Production settings use the hashed-name static storage: pages need its manifest (a clean clone has none).
    run_py(["manage.py", "collectstatic", "--noinput", "-v", "0"], env)
    out = run_py(["-m", "tests.system.faultkit", "seed", str(threads), str(pool)], env)
    return dict(json.loads(out.strip().splitlines()[-1]))


def _warm(ports: list[int], data: dict[str, Any], threads: int) -> None:
    warm = Load(ports, data, threads=threads).start(max_seconds=2.0)  # first requests load code
    time.sleep(2.0)
    warm.stop()


@contextlib.contextmanager
def world(threads: int, pool: int, broker_url: str = "", broker_queue: str = "") -> Iterator[World]:
    bindir = pg_bindir()
    assert bindir is not None
    pg = PrivatePostgres(bindir).init()
    redis = PrivateRedis()
    server = Server(workers=2, threads=1)
    try:
        redis.start()
        data = _prepare(pg, redis.url, threads, pool)
        server.env = _server_env(pg, redis.url, broker_url, broker_queue)
        server.start()
        _warm([server.port], data, threads)
        yield World(pg=pg, redis=redis, server=server, data=data, broker_queue=broker_queue)
    finally:
        server.stop()
        redis.close()
        pg.close()
        for log in (ROOT / "var" / "faults").glob("worker-*.log"):
            log.unlink()


@functools.cache
def redis_ha_module() -> Any:
    """deploy/ha.py (a script directory, not a package) loaded as a module: the RedisHA that make stack runs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bazaar_deploy_ha", ROOT / "deploy" / "ha.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@dataclass
class HAWorld:
    """Private PostgreSQL, Redis behind Sentinel (primary, replica, three sentinels), two app servers."""

    pg: PrivatePostgres
    ha: Any  # deploy/ha.py RedisHA
    servers: list[Server]
    data: dict[str, Any]

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]


@contextlib.contextmanager
def ha_world(threads: int, pool: int, servers: int = 2) -> Iterator[HAWorld]:
    bindir = pg_bindir()
    assert bindir is not None
    pg = PrivatePostgres(bindir).init()
    ports = [free_port() for _ in range(5)]
    ha = redis_ha_module().RedisHA(
        Path(tempfile.mkdtemp(prefix="bazaar-faults-ha-")), ports[0], ports[1], ports[2:]
    )
    apps = [Server(workers=2, threads=1) for _ in range(servers)]
    try:
        ha.start()
        data = _prepare(pg, ha.url(0), threads, pool)
        for app in apps:
            app.env = _server_env(pg, ha.url(0))
            app.start()
        _warm([a.port for a in apps], data, threads)
        yield HAWorld(pg=pg, ha=ha, servers=apps, data=data)
    finally:
        for app in apps:
            app.stop()
        ha.stop()
        shutil.rmtree(ha.dir, ignore_errors=True)
        pg.close()


@dataclass
class ReplicaWorld:
    """Private PostgreSQL primary + streaming replica (replaying with a delay), Redis, two app servers that read
    replica-safe surfaces from the replica (DATABASE_REPLICA_URL)."""

    pg: PrivatePostgres
    replica: PrivatePostgres
    redis: PrivateRedis
    servers: list[Server]
    data: dict[str, Any]

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]


@contextlib.contextmanager
def replica_world(threads: int, pool: int, apply_delay: str, servers: int = 2) -> Iterator[ReplicaWorld]:
    bindir = pg_bindir()
    assert bindir is not None
    pg = PrivatePostgres(bindir).init()
    redis = PrivateRedis()
    replica: PrivatePostgres | None = None
    apps = [Server(workers=2, threads=1) for _ in range(servers)]
    try:
        redis.start()
        data = _prepare(pg, redis.url, threads, pool)
        replica = streaming_replica(pg, apply_delay)
        for app in apps:
            app.env = {**_server_env(pg, redis.url), "DATABASE_REPLICA_URL": replica.url()}
            app.start()
        yield ReplicaWorld(pg=pg, replica=replica, redis=redis, servers=apps, data=data)
    finally:
        for app in apps:
            app.stop()
        if replica is not None:
            replica.close()
        redis.close()
        pg.close()


# --- Celery worker ----------------------------------------------------------------------------------------


@dataclass
class Worker:
    """A real ``celery worker`` subprocess on a private queue (solo pool: the task runs in the process that a
    SIGKILL takes down, like a lost machine)."""

    env: dict[str, str]
    queue: str
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: ROOT / "var" / "faults" / f"worker-{uuid.uuid4().hex[:8]}.log")

    def start(self) -> Worker:
        cmd = [
            str(Path(PY).parent / "celery"),
            "-A",
            "bazaar.config",
            "worker",
            "-Q",
            self.queue,
            "-P",
            "solo",
            "-n",
            f"faults-{uuid.uuid4().hex[:8]}@%h",
            "-l",
            "info",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)  # the warm shutdown of an idle solo worker can take 10+ s
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


# --- SMTP ---------------------------------------------------------------------------------------------------


class StallingSmtp:
    """A minimal SMTP server on 127.0.0.1 (enough of RFC 5321 for Django's SMTP backend). While ``stall`` is set,
    a new connection is accepted and then left waiting for the greeting, so the sending task hangs mid-send."""

    def __init__(self) -> None:
        import socketserver

        self.messages: list[bytes] = []
        self.connections = 0
        self.stall = threading.Event()
        self.release = threading.Event()
        kit = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                kit.connections += 1
                if kit.stall.is_set():
                    kit.release.wait(60)
                    return
                self.wfile.write(b"220 faults ESMTP\r\n")
                data: list[bytes] = []
                in_data = False
                for line in self.rfile:
                    if in_data:
                        if line in (b".\r\n", b".\n"):
                            in_data = False
                            kit.messages.append(b"".join(data))
                            self.wfile.write(b"250 queued\r\n")
                        else:
                            data.append(line)
                        continue
                    verb = line[:4].upper()
                    if verb == b"DATA":
                        in_data, data = True, []
                        self.wfile.write(b"354 go ahead\r\n")
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 ok\r\n")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


# --- HTTP load --------------------------------------------------------------------------------------------


@dataclass
class Result:
    phase: str
    op: str
    status: int  # 0: no HTTP answer (connection refused/reset, timeout)
    seconds: float
    at: float
    body: bytes = b""
    ack: Any = None  # what an acknowledged write proves (ids, versions)


def request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {"Host": "127.0.0.1", **(headers or {})}
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    return resp.status, resp.read()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        return request(conn, "GET", path, headers=headers)
    finally:
        conn.close()


def call(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        return request(conn, method, path, body, headers)
    finally:
        conn.close()


def upload(port: int, path: str, content: bytes, token: str, name: str = "upload.csv") -> tuple[int, bytes]:
    """POST one file as multipart/form-data (field ``file``) with a bearer token."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={
                "Host": "127.0.0.1",
                "Authorization": f"Bearer {token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


#: Next unused pokemon of each load thread, shared by every Load of the process (each exchange moves a fresh one).
_next_pokemon: Counter[int] = Counter()


class Workload:
    """Each load thread cycles through reads (store page, title list, trainer list, KV get) and writes (order,
    rent, exchange, KV put). A write's acknowledgement (2xx) is kept with what it proves."""

    READS = ("store_page", "titles", "trainers", "kv_get")
    WRITES = ("order", "rent", "exchange", "kv_put")

    def __init__(self, data: dict[str, Any], thread: int, writes: bool = True) -> None:
        self.d = data
        self.t = thread
        self.n = 0
        self.hot_version = 0
        self.ops = self.READS + self.WRITES if writes else self.READS
        self.staff = {"Authorization": f"Bearer {data['token']}"}
        self.kv = {"Authorization": f"Bearer {data['kv_key']}"}

    def step(self, conn: http.client.HTTPConnection) -> tuple[str, int, bytes, Any]:
        op = self.ops[self.n % len(self.ops)]
        self.n += 1
        d, t = self.d, self.t
        if op == "store_page":
            return op, *request(conn, "GET", f"/s/{d['slug']}/"), None
        if op == "titles":
            return op, *request(conn, "GET", "/api/rentals/titles"), None
        if op == "trainers":
            return op, *request(conn, "GET", "/api/trading/trainers"), None
        if op == "kv_get":
            # The thread's own last acknowledged write of its hot key must be visible: (version read, minimum).
            status, raw = request(conn, "GET", f"/api/kv/keys/hot-{t}", headers=self.kv)
            return (
                op,
                status,
                raw,
                ((json.loads(raw)["version"], self.hot_version) if status == 200 else None),
            )
        if op == "order":
            idem = uuid.uuid4().hex
            body = {
                "items": [{"product_id": d["product_id"], "quantity": 1}],
                "customer_name": "Load",
                "phone": "+911234567890",
                "address": "1 Loopback Road",
            }
            path = f"/api/storefront/stores/{d['slug']}/orders"
            status, raw = request(conn, "POST", path, body, {"Idempotency-Key": idem})
            return op, status, raw, (json.loads(raw)["number"] if status == 201 else None)
        if op == "rent":
            body = {"customer_id": d["customers"][t], "title_id": d["title_id"]}
            status, raw = request(conn, "POST", "/api/rentals/rentals", body, self.staff)
            return op, status, raw, (json.loads(raw)["id"] if status == 201 else None)
        if op == "exchange":
            if _next_pokemon[t] >= d["pool"]:
                return self.step(conn)  # pool used up: skip exchanges
            pid = f"fp{t}-{_next_pokemon[t]}"
            _next_pokemon[t] += 1  # a fresh pokemon every time: an ambiguous failure cannot confuse the next
            body = {"trainer_a": f"fa{t}", "trainer_b": f"fb{t}", "a_gives": [pid], "b_gives": []}
            status, raw = request(conn, "POST", "/api/trading/exchange", body, self.staff)
            return op, status, raw, (pid if status == 200 else None)
        # kv_put: the hot key (read back by kv_get) and a fresh key per write
        key = f"w{t}-{self.n}" if self.n % 3 else f"hot-{t}"
        status, raw = request(conn, "PUT", f"/api/kv/keys/{key}", {"value": self.n}, self.kv)
        if status != 200:
            return op, status, raw, None
        version = json.loads(raw)["version"]
        if key.startswith("hot-"):
            self.hot_version = max(self.hot_version, version)
        return op, status, raw, (key, version, self.n)


class Load:
    """``threads`` keep-alive HTTP clients against 127.0.0.1:port until ``stop()`` or ``max_seconds``. Given several
    ports (app servers), each client moves to the next server on every request, shifted by one each round of the
    workload, so a thread's write and its read-back go through different servers."""

    def __init__(
        self, port: int | list[int], data: dict[str, Any], threads: int = 4, writes: bool = True
    ) -> None:
        self.ports = port if isinstance(port, list) else [port]
        self.data = data
        self.threads = threads
        self.writes = writes
        self.phase = "before"
        self.marks: list[tuple[str, float]] = [("before", time.monotonic())]
        self.results: list[Result] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def mark(self, phase: str) -> None:
        """Label the requests that start from now on with ``phase``."""
        self.phase = phase
        self.marks.append((phase, time.monotonic()))

    def durations(self) -> dict[str, float]:
        ends = [t for _, t in self.marks[1:]] + [max((r.at for r in self.results), default=time.monotonic())]
        return {p: round(end - t, 2) for (p, t), end in zip(self.marks, ends, strict=True)}

    def _run(self, t: int, max_seconds: float) -> None:
        work = Workload(self.data, t, self.writes)
        deadline = time.monotonic() + max_seconds
        conns: dict[int, http.client.HTTPConnection] = {}
        while not self._stop.is_set() and time.monotonic() < deadline:
            k = work.n + t
            port = self.ports[(k + k // len(work.ops)) % len(self.ports)]
            conn = conns.get(port)
            if conn is None:
                conn = conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            phase = self.phase
            start = time.monotonic()
            try:
                op, status, raw, ack = work.step(conn)
            except (OSError, http.client.HTTPException) as exc:
                op, status, raw, ack = "?", 0, repr(exc).encode(), None
                conns.pop(port).close()
                work.n += 1  # the next request goes to the next server
                time.sleep(0.05)
            end = time.monotonic()
            keep = raw if status >= 300 or status == 0 else b""
            with self._lock:
                self.results.append(Result(phase, op, status, end - start, end, keep[:300], ack))
        for c in conns.values():
            c.close()

    def start(self, max_seconds: float = 60.0) -> Load:
        for t in range(self.threads):
            th = threading.Thread(target=self._run, args=(t, max_seconds), daemon=True)
            th.start()
            self._workers.append(th)
        return self

    def stop(self) -> None:
        self._stop.set()
        for th in self._workers:
            th.join(30)

    def of(self, phase: str) -> list[Result]:
        return [r for r in self.results if r.phase == phase]

    def acks(self, op: str) -> list[Any]:
        return [r.ack for r in self.results if r.op == op and r.ack is not None]


def stale_reads(results: list[Result]) -> list[Result]:
    """KV reads that returned an older version than the reading thread had already written."""
    return [r for r in results if r.op == "kv_get" and r.ack is not None and r.ack[0] < r.ack[1]]


def statuses(results: list[Result]) -> dict[int, int]:
    return dict(sorted(Counter(r.status for r in results).items()))


def rate(results: list[Result]) -> float:
    if len(results) < 2:
        return 0.0
    span = max(r.at for r in results) - min(r.at - r.seconds for r in results)
    return len(results) / span if span > 0 else 0.0


def p99(results: list[Result]) -> float:
    xs = sorted(r.seconds for r in results)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else 0.0


def lost_writes(w: World | HAWorld | ReplicaWorld, load: Load) -> dict[str, list[Any]]:
    """Every acknowledged write that the database does not hold (empty lists: nothing lost)."""
    lost: dict[str, list[Any]] = {}
    numbers = load.acks("order")
    found = {
        r[0] for r in w.pg.query("SELECT number FROM storefront_order WHERE number = ANY(%s)", [numbers])
    }
    lost["order"] = [n for n in numbers if n not in found]
    ids = load.acks("rent")
    found = {r[0] for r in w.pg.query("SELECT id FROM rentals_rental WHERE id = ANY(%s)", [ids])}
    lost["rent"] = [i for i in ids if i not in found]
    moved = load.acks("exchange")
    owners = dict(
        w.pg.query(
            "SELECT p.public_id, t.public_id FROM trading_pokemon p JOIN trading_trainer t ON t.id = p.owner_id "
            "WHERE p.public_id = ANY(%s)",
            [moved],
        )
    )
    lost["exchange"] = [p for p in moved if owners.get(p) != "fb" + p[2 : p.index("-")]]
    puts = load.acks("kv_put")
    rows = {
        k: (v, val)
        for k, v, val in w.pg.query(
            "SELECT key, version, value FROM kvstore_entry WHERE tenant_id = %s AND key = ANY(%s)",
            [w.data["tenant_id"], [k for k, _, _ in puts]],
        )
    }
    bad = []
    for key, version, value in puts:
        have = rows.get(key)
        if have is None or have[0] < version or (have[0] == version and json.loads(have[1]) != value):
            bad.append((key, version, value, have))
    lost["kv_put"] = bad
    return lost


if __name__ == "__main__":  # python -m tests.system.faultkit seed THREADS POOL
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bazaar.config.settings.base")
    django.setup()
    if sys.argv[1] == "seed":
        print(json.dumps(seed_world(int(sys.argv[2]), int(sys.argv[3]))))
