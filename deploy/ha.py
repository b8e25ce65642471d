"""Redis with failover on one machine, for `make stack` and the failover tests: a primary, a replica and Redis
Sentinels (Debian's redis-server run with ``--sentinel``), all on 127.0.0.1, all in one state directory.

Every process is started in a session of its own and remembered by pid, so whoever started it stops exactly it
(``stop()``), never a process of someone else's. Data is kept in memory only (``--save ""``): a failover, not a
restart, is what this topology answers.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not happen within {timeout}s")


def _cli(port: int, *args: str) -> str:
    r = subprocess.run(
        ["redis-cli", "-h", HOST, "-p", str(port), *args], capture_output=True, text=True, timeout=5
    )
    return r.stdout.strip() if r.returncode == 0 else ""


def _info(port: int, section: str) -> dict[str, str]:
    text = _cli(port, "INFO", section)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


@dataclass
class RedisHA:
    """A Redis primary + one replica + ``len(sentinel_ports)`` sentinels watching them as ``service``.

    ``down_after_ms`` is how long a silent primary takes to be declared down: the bulk of a failover's window.
    """

    dir: Path
    primary_port: int
    replica_port: int
    sentinel_ports: list[int]
    service: str = "bazaar"
    down_after_ms: int = 1000
    pids: dict[str, int] = field(default_factory=dict)

    def url(self, db: int = 0) -> str:
        """The ``sentinel://`` address the app reads from REDIS_URL / CELERY_BROKER_URL (bazaar.core.redisurl)."""
        hosts = ",".join(f"{HOST}:{p}" for p in self.sentinel_ports)
        return f"sentinel://{hosts}/{self.service}/{db}"

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pids[name] = proc.pid

    def _server(self, name: str, port: int, *extra: str) -> None:
        data = self.dir / name
        data.mkdir(parents=True, exist_ok=True)
        self._spawn(
            name,
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data),
                "--daemonize",
                "no",
                *extra,
            ],
        )
        wait_for(lambda: _cli(port, "PING") == "PONG", f"redis-server :{port} answering")

    def start(self) -> RedisHA:
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._server("redis-primary", self.primary_port)
            self._server("redis-replica", self.replica_port, "--replicaof", HOST, str(self.primary_port))
            wait_for(
                lambda: _info(self.replica_port, "replication").get("master_link_status") == "up",
                "the replica's link to the primary",
            )
            quorum = len(self.sentinel_ports) // 2 + 1
            for port in self.sentinel_ports:
                conf = self.dir / f"sentinel-{port}.conf"
                conf.write_text(
                    f"port {port}\nbind {HOST}\ndir {self.dir}\ndaemonize no\n"
                    f"sentinel monitor {self.service} {HOST} {self.primary_port} {quorum}\n"
                    f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                    f"sentinel failover-timeout {self.service} 10000\n"
                    f"sentinel parallel-syncs {self.service} 1\n"
                )
                self._spawn(f"sentinel-{port}", ["redis-server", str(conf), "--sentinel"])
            for port in self.sentinel_ports:
                wait_for(
                    functools.partial(self._sentinel_ready, port),
                    f"sentinel :{port} seeing the replica and its peers",
                )
        except BaseException:
            self.stop()
            raise
        return self

    def _sentinel_ready(self, port: int) -> bool:
        out = _cli(port, "SENTINEL", "master", self.service)
        fields = out.splitlines()
        info = dict(zip(fields[::2], fields[1::2], strict=False))
        peers = len(self.sentinel_ports) - 1
        return info.get("num-slaves") == "1" and int(info.get("num-other-sentinels", "0")) >= peers

    def primary(self) -> int:
        """The port the sentinels currently name as the primary (0 if none answers)."""
        for port in self.sentinel_ports:
            out = _cli(port, "SENTINEL", "get-master-addr-by-name", self.service).splitlines()
            if len(out) == 2:
                return int(out[1])
        return 0

    def kill_primary(self) -> int:
        """SIGKILL the current primary, as a lost machine; returns its port."""
        port = self.primary()
        name = "redis-primary" if port == self.primary_port else "redis-replica"
        pid = self.pids.pop(name)
        os.killpg(pid, signal.SIGKILL)
        with_reap(pid)
        return port

    def wait_promoted(self, old_port: int, timeout: float = 30.0) -> int:
        """Until the sentinels name another primary and it answers as one; returns its port."""

        def promoted() -> bool:
            port = self.primary()
            return port not in (0, old_port) and _info(port, "replication").get("role") == "master"

        wait_for(promoted, "a failover", timeout)
        return self.primary()

    def revive(self, port: int, timeout: float = 30.0) -> None:
        """Start a killed server again on ``port`` as a replica of the current primary, and wait until it is in
        sync and every sentinel counts it as a healthy replica (ready for the next failover)."""
        name = "redis-primary" if port == self.primary_port else "redis-replica"
        self._server(name, port, "--replicaof", HOST, str(self.primary()))
        wait_for(
            lambda: _info(port, "replication").get("master_link_status") == "up", "the revived replica's link"
        )

        def seen(sentinel: int) -> bool:  # sentinel counts the replica at ``port`` as healthy
            out = _cli(sentinel, "SENTINEL", "replicas", self.service).splitlines()
            pairs = dict(zip(out[::2], out[1::2], strict=False))
            return pairs.get("port") == str(port) and "down" not in pairs.get("flags", "down")

        for sentinel in self.sentinel_ports:
            wait_for(
                functools.partial(seen, sentinel),
                f"sentinel :{sentinel} counting :{port} as a replica",
                timeout,
            )

    def stop(self) -> None:
        for name, pid in list(self.pids.items()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            with_reap(pid)
            self.pids.pop(name)


def with_reap(pid: int) -> None:
    """Collect a killed child of this process (no zombie); a process started by an earlier command is not ours."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def pgbouncer_conf(
    state: Path,
    *,
    port: int,
    db: str,
    pg_port: int = 5432,
    mode: str = "session",
    pool_size: int = 20,
    max_clients: int = 200,
) -> Path:
    """Debian's PgBouncer in front of ``db`` on 127.0.0.1:``pg_port``, listening on ``port``; returns the ini.

    ``ignore_startup_parameters = options``: PgBouncer 1.18 refuses the ``-c statement_timeout=...`` startup option
    Bazaar sends, so the stack sets the timeout on the database instead (ALTER DATABASE ... SET), which also
    survives PgBouncer's ``DISCARD ALL`` between two clients of one server connection in session mode.
    """
    state.mkdir(parents=True, exist_ok=True)
    (state / "userlist.txt").write_text('"postgres" ""\n')
    ini = state / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"{db} = host={HOST} port={pg_port} dbname={db}\n"
        "[pgbouncer]\n"
        f"listen_addr = {HOST}\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {state / 'userlist.txt'}\n"
        f"pool_mode = {mode}\ndefault_pool_size = {pool_size}\nmax_client_conn = {max_clients}\n"
        "reserve_pool_size = 0\nserver_reset_query = DISCARD ALL\n"
        "ignore_startup_parameters = options,extra_float_digits\n"
        f"logfile = {state / 'pgbouncer.log'}\n"
        "log_connections = 0\nlog_disconnections = 0\n"
    )
    if os.geteuid() == 0:  # PgBouncer refuses to run as root: it drops to the postgres user (-u)
        shutil.chown(state, "postgres", "postgres")
        for f in state.iterdir():
            shutil.chown(f, "postgres", "postgres")
    return ini


def pg_ready(port: int) -> bool:
    """PostgreSQL (or PgBouncer) on 127.0.0.1:``port`` accepts connections."""
    argv = ["pg_isready", "-h", HOST, "-p", str(port), "-U", "postgres", "-q"]
    return subprocess.run(argv, capture_output=True).returncode == 0


def pgbouncer_argv(ini: Path) -> list[str]:
    return ["pgbouncer", *(["-u", "postgres"] if os.geteuid() == 0 else []), str(ini)]


# --- PostgreSQL primary + streaming replica (make stack with STACK_PG_REPLICA=1) ------------------------------


def _pg_bin(name: str) -> str:
    import glob

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else name


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, its tools run as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _pg(name: str, *args: str) -> None:
    r = subprocess.run(_as_postgres([_pg_bin(name), *args]), capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{name} failed: {r.stdout[-1000:]}{r.stderr[-2000:]}")


def _owned_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


def pg_start(home: Path, port: int) -> None:
    """Start the cluster in ``home/data`` on 127.0.0.1:``port`` (socket in ``home``) and wait for it."""
    opts = f"-p {port} -k {home} -c listen_addresses={HOST}"
    _pg("pg_ctl", "-D", str(home / "data"), "-o", opts, "-l", str(home / "log"), "-w", "start")


def pg_primary(home: Path, port: int) -> None:
    """A new cluster (initdb, trust on loopback, replication allowed from it) started on ``port``."""
    _owned_dir(home)
    _pg("initdb", "-D", str(home / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
    pg_start(home, port)


def pg_standby(home: Path, port: int, primary_port: int, apply_delay: str = "0") -> None:
    """A hot standby of the primary on ``primary_port`` (pg_basebackup -R: streaming), replaying ``apply_delay``
    behind it, started on ``port``."""
    _owned_dir(home)
    _pg(
        "pg_basebackup", "-h", HOST, "-p", str(primary_port), "-U", "postgres", "-D", str(home / "data"),
        "-R", "-X", "stream", "-c", "fast", "--no-sync",
    )  # fmt: skip
    with open(home / "data" / "postgresql.auto.conf", "a") as conf:
        conf.write(f"hot_standby = on\nrecovery_min_apply_delay = '{apply_delay}'\n")
    pg_start(home, port)


def pg_stop(home: Path) -> None:
    if (home / "data" / "postmaster.pid").exists():
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(home / "data"), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=60,
        )
