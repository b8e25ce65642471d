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
