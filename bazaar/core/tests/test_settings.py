"""Production settings: refuse an insecure configuration; `check --deploy` is clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    base.update(
        {"DJANGO_SETTINGS_MODULE": "bazaar.config.settings.base", "BAZAAR_VAR_DIR": str(ROOT / "var" / "chk")}
    )
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_secret_key() -> None:
    r = _manage("check", DJANGO_DEBUG="false", DJANGO_SECRET_KEY="", DJANGO_ALLOWED_HOSTS="bazaar.example")
    assert r.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in r.stderr


def test_production_refuses_to_start_without_allowed_hosts() -> None:
    r = _manage("check", DJANGO_DEBUG="false", DJANGO_SECRET_KEY="x" * 60, DJANGO_ALLOWED_HOSTS="")
    assert r.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS must be set" in r.stderr


def test_check_deploy_reports_nothing() -> None:
    r = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="k3y-" + "q8Zr7Lm2Np5Vx9Tb4Hc6Jd1Fg3Ks0Wy" * 2,
        DJANGO_ALLOWED_HOSTS="bazaar.example",
        DJANGO_HTTPS="true",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "System check identified no issues" in r.stdout


def _test_cache_path(**env: str) -> tuple[str, str]:
    """CACHE_SQLITE_PATH and BAZAAR_TEST_CACHE_OWNER as the test settings leave them in a process with ``env``."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PYTEST"))
        and k not in ("CACHE_SQLITE_PATH", "BAZAAR_TEST_CACHE_OWNER")
    }
    code = (
        "import os; from bazaar.config.settings import test; "
        "print(test.CACHE_SQLITE_PATH, os.environ.get('BAZAAR_TEST_CACHE_OWNER') or '-')"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    path, owner = r.stdout.split()
    return path, owner


def test_each_xdist_worker_gets_its_own_test_cache_file() -> None:
    """Issue 19: pytest's process makes a cache file; an xdist worker, which inherits its controller's
    environment, makes its own; a server a worker started keeps the worker's."""
    controller, owner = _test_cache_path()
    assert (Path(controller).name.startswith("bazaar-test-cache-"), owner) == (True, "-")
    worker, owner = _test_cache_path(
        CACHE_SQLITE_PATH=controller, BAZAAR_TEST_CACHE_OWNER="", PYTEST_XDIST_WORKER="gw1"
    )
    assert (worker != controller, owner) == (True, "gw1")
    child = {"CACHE_SQLITE_PATH": worker, "BAZAAR_TEST_CACHE_OWNER": "gw1"}
    assert _test_cache_path(**child, PYTEST_XDIST_WORKER="gw1") == (worker, "gw1")
    assert _test_cache_path(**child) == (worker, "gw1")  # a child whose PYTEST_* were dropped
    assert _test_cache_path(CACHE_SQLITE_PATH="/tmp/mine.sqlite3") == ("/tmp/mine.sqlite3", "-")


def test_a_percent_encoded_database_host_is_a_socket_directory() -> None:
    from bazaar.core.dburl import socket_host

    assert socket_host({"HOST": "%2Frun%2Fpostgresql", "NAME": "d"}) == {
        "HOST": "/run/postgresql",
        "NAME": "d",
    }
    assert socket_host({"HOST": "db.example", "PORT": 5432})["HOST"] == "db.example"
    assert socket_host({"NAME": "bazaar.sqlite3"}) == {"NAME": "bazaar.sqlite3"}


def test_postgres_over_its_unix_socket_from_a_libpq_uri() -> None:
    """``DATABASE_URL=postgresql://user@%2Fvar%2Frun%2Fpostgresql/db`` (libpq's spelling of a socket directory)
    connects through that socket: before, the still-encoded host was looked up by name and every connection
    failed."""
    import pytest
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    found = [
        d for d in ("/var/run/postgresql", "/run/postgresql", "/tmp")
        if Path(d, f".s.PGSQL.{connection.settings_dict.get('PORT') or 5432}").exists()
    ]  # fmt: skip
    if not found:
        pytest.skip("no PostgreSQL socket on this host")
    user = connection.settings_dict.get("USER") or "postgres"
    url = f"postgresql://{user}@{found[0].replace('/', '%2F')}:{connection.settings_dict.get('PORT') or 5432}/postgres"
    code = (
        "import django; django.setup(); from django.db import connection; "
        "c = connection.cursor(); c.execute('SELECT inet_server_addr() IS NULL'); "
        "print(connection.settings_dict['HOST'], c.fetchone()[0])"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    base.update({"DJANGO_SETTINGS_MODULE": "bazaar.config.settings.base", "DATABASE_URL": url})
    base.update({"BAZAAR_VAR_DIR": str(ROOT / "var" / "chk")})
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [found[0], "True"]  # no server address: a Unix-domain socket
