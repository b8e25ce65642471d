"""Shared pytest fixtures: a private cache namespace per test, service markers, API clients."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from bazaar.core import cache
from tests.contract.answers import Evidence

#: Markers whose tests run alone, after the parallel phase (``make pytest``; ``--serial``): ``serial`` itself and the
#: families that start a browser, a Celery worker on the run's one queue, or talk to the one running stack.
SERIAL_FAMILIES = ("serial", "browser", "worker", "stack")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bazaar")
    group.addoption(
        "--serial",
        choices=("all", "exclude", "only"),
        default="all",
        help="all: every test (default); exclude: deselect the serial ones (the parallel phase of make pytest); "
        "only: deselect all but them (the serial phase). Serial: marked serial, browser, worker or stack.",
    )
    group.addoption(
        "--answers-save",
        metavar="PATH",
        help="write this run's evidence for the error-code reachability check to PATH (make pytest's first phase)",
    )
    group.addoption(
        "--answers-carry",
        metavar="PATH",
        help="merge an earlier run's evidence from PATH (--answers-save) before deciding the reachability check",
    )


def is_serial(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) is not None for name in SERIAL_FAMILIES)


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect: the evidence counts every observing test collected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from tests.contract import answers

    _evidence.collected |= {item.nodeid for item in items if answers.observer_of(item.nodeid)}
    on_pg = settings.DB_VENDOR == "postgresql"
    has_redis = bool(settings.REDIS_URL)
    has_broker = bool(settings.CELERY_BROKER_URL)
    want_browser = os.environ.get("BAZAAR_BROWSER_TESTS", "1") != "0" and os.path.exists("/usr/bin/chromium")
    for item in items:
        if "postgres" in item.keywords and not on_pg:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))
        if "redis" in item.keywords and not has_redis:
            item.add_marker(pytest.mark.skip(reason="needs Redis (set REDIS_URL)"))
        if "worker" in item.keywords and not has_broker:
            item.add_marker(pytest.mark.skip(reason="needs a broker (set CELERY_BROKER_URL)"))
        if "browser" in item.keywords and not want_browser:
            item.add_marker(pytest.mark.skip(reason="needs /usr/bin/chromium (apt-get install chromium)"))
        if "stack" in item.keywords and not os.environ.get("BAZAAR_STACK_URL"):
            item.add_marker(
                pytest.mark.skip(reason="needs the scaled-out stack (make stack; BAZAAR_STACK_URL)")
            )
    mode = config.getoption("serial")
    if mode != "all":
        keep = [item for item in items if is_serial(item) == (mode == "only")]
        if len(keep) < len(items):
            kept = set(keep)
            config.hook.pytest_deselected(items=[item for item in items if item not in kept])
            items[:] = keep


def pytest_configure(config: pytest.Config) -> None:
    """Record every error the API answers, by operation, status and code (``tests/contract/answers.py``)."""
    from tests.contract import answers

    answers.install()


@pytest.fixture(autouse=True)
def answers_declared() -> Iterator[None]:
    """A test that made an API operation answer a code its OpenAPI does not declare for that status fails
    (issue 14: the codes are part of the contract; declare them with ``@answers`` beside the route)."""
    from tests.contract import answers

    answers.take_violations()
    yield
    violations = answers.take_violations()
    assert not violations, "undeclared error answers:\n" + "\n".join(violations)


# This process's evidence for the reachability check (answers observed are added at the end, from answers.OBSERVED),
# and, in an xdist controller, what its workers reported.
_evidence = Evidence()
_from_workers: list[Evidence] = []


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    from tests.contract import answers

    if answers.observer_of(nodeid):
        _evidence.ran.add(nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: gather each worker's evidence (a worker that died reports none; its test failed)."""
    output = getattr(node, "workeroutput", {})
    if "answers_evidence" in output:
        _from_workers.append(Evidence.from_json(output["answers_evidence"]))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Check that every declared error code was answered (when the evidence of this run, its xdist workers and an
    earlier phase carried in ``--answers-carry`` covers every observing test, run without a failure), then remove
    this test process's shared-cache file (settings/test.py put it in the temp directory)."""
    from tests.contract import answers

    _evidence.observed |= answers.OBSERVED
    _evidence.failures = session.testsfailed
    worker = getattr(session.config, "workeroutput", None)
    if worker is not None:  # an xdist worker: hand the evidence to the controller
        worker["answers_evidence"] = _evidence.to_json()
    else:
        evidence = _evidence
        for other in _from_workers:
            evidence = evidence.merge(other)
        evidence = evidence.merge(_carried(session.config))
        save = session.config.getoption("answers_save")
        if save:
            Path(save).write_text(json.dumps(evidence.to_json()))
        missing = answers.verdict(evidence)
        if missing:
            _report_unreached(session, missing)
        elif missing == []:
            _summary.append(
                f"error codes: every declared code answered ({len(evidence.ran)} observing tests, "
                f"{len(evidence.observed)} answers)"
            )
    _remove_cache_file()


_summary: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _summary:
        terminalreporter.write_line(line)


def _carried(config: pytest.Config) -> Evidence:
    path = config.getoption("answers_carry")
    if not path:
        return Evidence()
    try:
        return Evidence.from_json(json.loads(Path(path).read_text()))
    except (FileNotFoundError, ValueError):
        # The first phase wrote nothing (it died, or mktemp's empty file): this run's evidence alone is incomplete.
        return Evidence()


def _report_unreached(session: pytest.Session, missing: list[str]) -> None:
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    text = (
        "declared error codes that no test answered (tests/contract/answers.py; answer them in a test, "
        "or drop them from @answers):\n  " + "\n  ".join(missing)
    )
    if reporter is not None:
        reporter.write_sep("=", "unreached error codes", red=True)
        reporter.write_line(text)
    else:
        print(text)


def _remove_cache_file() -> None:
    path = settings.CACHE_SQLITE_PATH
    if os.path.basename(path).startswith(f"bazaar-test-cache-{os.getpid()}."):
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path + suffix)


@pytest.fixture(autouse=True)
def cache_namespace() -> Iterator[str]:
    """Every test gets its own key prefix, so entries never leak between tests (or parallel runs)."""
    prefix = cache.new_test_prefix()
    cache.set_prefix(prefix)
    yield prefix
    cache.set_prefix(None)


@pytest.fixture(autouse=True)
def celery_eager_unless_worker(request: pytest.FixtureRequest) -> Iterator[None]:
    """Unit tests run tasks in-process even when a broker is configured; ``worker`` tests use the real one."""
    from bazaar.config.celery import app

    if "worker" in request.keywords:
        yield
        return
    from celery._state import _set_task_join_will_block  # type: ignore[attr-defined]

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    # Celery's "a task is running here" flag is process-global: eager tasks run by concurrent threads (the
    # PostgreSQL concurrency tests) can leave it set, and a later test's result.get() would then be refused.
    _set_task_join_will_block(False)
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def make_user(db: Any) -> Any:
    from bazaar.accounts.models import User

    def make(username: str = "alice", password: str = "correct-horse-battery", **extra: Any) -> User:
        user = User(username=username, email=f"{username}@example.com", **extra)
        user.set_password(password)
        user.save()
        return user

    return make


@pytest.fixture
def token_for(db: Any) -> Any:
    from bazaar.accounts.services import token_create

    def make(user: Any) -> str:
        return token_create(user=user, name="test").secret

    return make


@pytest.fixture
def api_client(client: Any) -> Any:
    """A Django test client with a helper for bearer-authenticated JSON calls."""

    class Api:
        def __init__(self) -> None:
            self.client = client

        def call(
            self, method: str, path: str, data: Any = None, token: str | None = None, **headers: Any
        ) -> Any:
            import json as _json

            kwargs: dict[str, Any] = {}
            if token:
                kwargs["HTTP_AUTHORIZATION"] = f"Bearer {token}"
            for k, v in headers.items():
                kwargs[k] = v
            if data is not None:
                kwargs["data"] = data if isinstance(data, str | bytes) else _json.dumps(data)
                kwargs["content_type"] = "application/json"
            return getattr(self.client, method.lower())(path, **kwargs)

    return Api()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Any]:
    """A real Celery worker subprocess consuming this run's queue, against the test database.

    Only for tests marked ``worker`` (which run with CELERY_BROKER_URL set). Tests that use it must be
    ``django_db(transaction=True)`` so the worker sees committed data, and pass the cache prefix explicitly
    (``BAZAAR_CACHE_PREFIX`` of the worker is fixed per session: use ``worker_cache_prefix``).
    """
    import signal
    import subprocess
    import sys
    import time
    import uuid
    from pathlib import Path

    from django.db import connections

    with django_db_blocker.unblock():
        db = connections["default"].settings_dict
    env = dict(os.environ)
    if settings.DB_VENDOR == "postgresql":
        user = db.get("USER") or "postgres"
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or 5432
        env["DATABASE_URL"] = f"postgres://{user}@{host}:{port}/{db['NAME']}"
    prefix = f"w{uuid.uuid4().hex[:10]}"
    env["BAZAAR_CACHE_PREFIX"] = prefix
    env.pop("PYTEST_CURRENT_TEST", None)
    root = Path(__file__).resolve().parent
    cmd = [
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "bazaar.config",
        "worker",
        "-Q",
        settings.CELERY_TASK_DEFAULT_QUEUE,
        "-c",
        "2",
        "-P",
        "threads",
        "-l",
        "warning",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
    ]
    proc = subprocess.Popen(cmd, cwd=root, env=env, start_new_session=True)
    time.sleep(3)

    class Worker:
        cache_prefix = prefix
        process = proc

    try:
        yield Worker
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
