"""Packaging as Python users expect it: the runtime apart from the dev tools.

Cheap checks (every run): the runtime lock (``requirements.lock``) holds the runtime and nothing of the dev tools,
the dev lock (``requirements-dev.lock``) the same pins plus the tools, both hash-checked; no module the service
imports in production imports a dev-only package; the production image installs the runtime lock only, runs as
a non-root user, with DEBUG off. The real thing — ``pip install`` of the runtime lock and the package into a
fresh venv, then ``manage.py check`` — runs with ``BAZAAR_SLOW=1`` (it downloads and installs ~40 packages).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_TOOLS = {"mypy", "playwright", "schemathesis", "pytest", "ruff", "hypothesis", "matplotlib", "uv"}
#: Distribution name → the name it is imported by, where the two differ.
IMPORT_NAMES = {
    "axe-playwright-python": "axe_playwright_python",
    "pytest-xdist": "xdist",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^ \\\n]+)", text, re.MULTILINE))
    # Every pin carries at least one hash (pip --require-hashes refuses the file otherwise).
    blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text.split("\n", 2)[2])
    assert all("--hash=sha256:" in b for b in blocks if "==" in b), f"{lock}: a pin without a hash"
    return {_norm(k): v for k, v in pins.items()}


def _requirement_names(specs: list[str]) -> set[str]:
    return {_norm(re.split(r"[\[<>=!~; ]", s, maxsplit=1)[0]) for s in specs}


def test_runtime_lock_has_the_runtime_and_no_dev_tools() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    declared = _requirement_names(project["dependencies"])
    assert "pillow" in declared, "Pillow is a runtime dependency (ImageField), not a gift of matplotlib"
    assert declared <= set(runtime), (
        f"runtime dependencies missing from the runtime lock: {declared - set(runtime)}"
    )
    assert not DEV_TOOLS & set(runtime), f"dev tools in the runtime lock: {DEV_TOOLS & set(runtime)}"
    assert set(dev) >= DEV_TOOLS
    assert _requirement_names(project["optional-dependencies"]["dev"]) <= set(dev)
    # One set of versions: the runtime pins are the dev lock's (make lock constrains one by the other).
    assert {k: dev.get(k) for k in runtime} == runtime


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_production_code_imports_no_dev_only_package() -> None:
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    dev_only = {IMPORT_NAMES.get(name, name.replace("-", "_")) for name in set(dev) - set(runtime)}
    dev_only |= {"_pytest", "pytest_django", "django_stubs", "mypy_django_plugin"}
    offenders = {}
    for path in (ROOT / "bazaar").rglob("*.py"):
        rel = path.relative_to(ROOT)
        if "tests" in rel.parts or rel.name in ("testing.py", "conftest.py"):
            continue
        bad = _imports(path) & dev_only
        if bad:
            offenders[str(rel)] = sorted(bad)
    assert offenders == {}, f"production modules importing dev-only packages: {offenders}"


def test_makefile_installs_the_dev_lock_and_locks_both() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile
    lock = makefile.split("\nlock:", 1)[1].split("\n\n", 1)[0]
    assert "$(BIN)/uv pip compile" in lock
    assert "-o requirements-dev.lock" in lock
    assert "-o requirements.lock" in lock


def test_production_image_installs_the_runtime_lock_as_non_root_with_debug_off() -> None:
    lines = [line.strip() for line in (ROOT / "deploy/Dockerfile").read_text().splitlines()]
    installs = [line for line in lines if "pip install" in line and "-r " in line]
    assert installs
    assert all("--require-hashes -r requirements.lock" in line for line in installs)
    assert not any("requirements-dev.lock" in line for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1] not in ("root", "0")
    env = " ".join(line for line in lines if line.startswith("ENV "))
    assert "DJANGO_DEBUG=false" in env


@pytest.mark.skipif(not os.environ.get("BAZAAR_SLOW"), reason="set BAZAAR_SLOW=1: installs into a fresh venv")
def test_fresh_venv_from_the_runtime_lock_runs_the_service(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--require-hashes", "-r", str(ROOT / "requirements.lock")], check=True)
    subprocess.run([*pip, "--no-deps", str(ROOT)], check=True)
    python = str(venv / "bin/python")
    for tool in ("mypy", "playwright", "schemathesis", "pytest", "ruff"):
        found = subprocess.run([python, "-c", f"import {tool}"], capture_output=True)
        assert found.returncode != 0, f"{tool} is installed by the runtime lock"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env["BAZAAR_VAR_DIR"] = str(tmp_path / "var")
    check = subprocess.run(
        [python, "-m", "django", "check"],
        cwd=tmp_path,  # the installed package, not the source tree
        env={**env, "DJANGO_SETTINGS_MODULE": "bazaar.config.settings.base"},
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr[-2000:]
    assert "no issues" in check.stdout
