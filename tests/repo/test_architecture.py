"""The import rules of docs/architecture.md §1, checked on the source: core imports no app (its tests included: the
system tests live in the top-level ``tests/``), an app's tests import no other app's tests and no system-test kit,
apps do not reach up into ``bazaar.config``, and every Celery task is named ``<app label>.<name>`` and lives in that
app's ``tasks.py``."""

from __future__ import annotations

import ast
from pathlib import Path

from celery import current_app

ROOT = Path(__file__).resolve().parents[2] / "bazaar"
APPS = ("accounts", "kvstore", "rentals", "storefront", "trading")


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _product_sources(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.py") if "tests" not in p.parts and "migrations" not in p.parts]


def test_core_imports_no_app() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in _product_sources(ROOT / "core")
        for name in _imports(path)
        if any(name == f"bazaar.{app}" or name.startswith(f"bazaar.{app}.") for app in APPS)
    }
    assert offenders == set()


def test_core_tests_import_only_core() -> None:
    """Issue 19: core's own tests are unit tests of core; whatever needs an app (or the whole system) is under
    ``tests/<tier>/``, so core's tests run and fail on their own."""
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / "core" / "tests").rglob("*.py")
        for name in _imports(path)
        if (name.startswith("bazaar.") and not (name == "bazaar.core" or name.startswith("bazaar.core.")))
        or name.split(".")[0] in ("tests", "bench", "deploy")
    }
    assert offenders == set()


def test_app_tests_import_no_other_apps_tests_and_no_system_kit() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for app in APPS
        for path in (ROOT / app / "tests").rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] == "tests"
        or any(name.startswith(f"bazaar.{other}.tests") for other in ("core", *APPS) if other != app)
    }
    assert offenders == set()


def test_apps_do_not_import_the_project_config() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for app in APPS
        for path in _product_sources(ROOT / app)
        for name in _imports(path)
        if name == "bazaar.config" or name.startswith("bazaar.config.")
    }
    assert offenders == set()


def test_every_task_is_named_after_its_app_and_every_beat_entry_names_one() -> None:
    import importlib

    import django.apps

    for module in ("core", *APPS):  # what the worker's autodiscovery imports
        if (ROOT / module / "tasks.py").exists():
            importlib.import_module(f"bazaar.{module}.tasks")
    labels = {cfg.label for cfg in django.apps.apps.get_app_configs() if cfg.name.startswith("bazaar.")}
    ours = {name: task for name, task in current_app.tasks.items() if task.__module__.startswith("bazaar.")}
    assert ours, "the tasks are registered"
    for name, task in ours.items():
        label, _, function = name.partition(".")
        assert label in labels, name
        assert function.isidentifier(), name
        assert task.__module__ == f"bazaar.{label}.tasks", name
    schedule = current_app.conf.beat_schedule
    assert {entry["task"] for entry in schedule.values()} <= set(ours)
    assert {"kvstore-purge-expired", "rentals-reminders", "trading-expire-offers"} <= set(schedule)


def test_large_bodies_are_allowed_where_the_apps_said() -> None:
    from bazaar.core import middleware

    assert set(middleware.LARGE_BODY_PREFIXES) == {"/api/trading/import", "/trading/import", "/api/kv/import"}
    assert middleware.IMAGE_UPLOAD_PREFIXES == ("/storefront/products/", "/admin/storefront/product/")
