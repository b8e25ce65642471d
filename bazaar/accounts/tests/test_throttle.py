"""Login throttling that holds: exact under concurrency (the attempt is counted atomically, in the database,
before any password is checked), while the cache is down and across the start of its outage."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import authenticate as real_authenticate
from django.db import connections
from django.test import Client

from bazaar.accounts.models import ApiToken, LoginCounter, User
from bazaar.core import cache

PASSWORD = "correct-horse-battery"


def _take_the_cache_down(settings: Any) -> None:
    """Point the cache at a closed port, as when Redis is down."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    cache.reset_backend()


@pytest.fixture
def cache_down(settings: Any) -> Iterator[None]:
    """The cache down for the whole test."""
    _take_the_cache_down(settings)
    yield
    cache.reset_backend()


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords that reached the check, from the API and the login page."""
    seen: list[str] = []
    lock = threading.Lock()

    def counting(request: Any = None, **credentials: Any) -> Any:
        with lock:
            seen.append(credentials.get("username", ""))
        return real_authenticate(request, **credentials)

    monkeypatch.setattr("bazaar.accounts.api.authenticate", counting)
    monkeypatch.setattr("bazaar.accounts.views.authenticate", counting)
    return seen


def _answer(i: int, password: str = "wrong-password") -> Any:
    """One login attempt: odd ``i`` on the login page, even ``i`` on the API."""
    client = Client()
    if i % 2:
        return client.post("/accounts/login/", {"username": "alice", "password": password})
    return client.post(
        "/api/accounts/tokens/login",
        json.dumps({"username": "alice", "password": password}),
        content_type="application/json",
    )


def _attempt(i: int, password: str = "wrong-password") -> int:
    return int(_answer(i, password).status_code)


def _concurrently(n: int) -> list[int]:
    barrier = threading.Barrier(n)
    statuses: list[int] = [0] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            statuses[i] = _attempt(i)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return statuses


def _expect_exactly_five(statuses: list[int], checked: list[str]) -> None:
    assert len(checked) == 5
    assert statuses.count(400) + statuses.count(401) == 5  # wrong password: the page says 400, the API 401
    assert statuses.count(429) == 35
    # Now even the right password is refused, on both doors, and nobody is signed in or given a token.
    tokens = ApiToken.objects.count()
    api = _answer(0, PASSWORD)
    assert api.status_code == 429
    assert (api.json()["code"], api["Retry-After"]) == ("login_throttled", "60")
    page = _answer(1, PASSWORD)
    assert page.status_code == 429
    assert "Too many failed logins" in page.content.decode()
    assert ApiToken.objects.count() == tokens == 0
    assert not User.objects.filter(last_login__isnull=False).exists()
    assert len(checked) == 5


#: serial (both 40-thread tests): 40 threads of Django requests are a heavy load beside the other xdist worker.
#: The account's count no longer depends on the cache answering in time: when it was kept in the cache, 8 of the 40
#: threads once met a cache timeout together on a 2-core CI host, were counted in the database from zero instead,
#: and 6 passwords were checked.
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.serial
@pytest.mark.django_db(transaction=True)
def test_forty_concurrent_wrong_passwords_check_exactly_five(make_user: Any, checked: list[str]) -> None:
    make_user("alice")
    _expect_exactly_five(_concurrently(40), checked)
    assert LoginCounter.objects.get(name="login:user:alice").count == 42  # every attempt, in one store


@pytest.mark.postgres
@pytest.mark.serial
@pytest.mark.django_db(transaction=True)
def test_forty_concurrent_wrong_passwords_check_exactly_five_while_the_cache_is_down(
    make_user: Any, checked: list[str], cache_down: None
) -> None:
    make_user("alice")
    _expect_exactly_five(_concurrently(40), checked)
    assert LoginCounter.objects.get(name="login:user:alice").count == 42


@pytest.mark.django_db
def test_the_database_counters_throttle_while_the_cache_is_down(
    make_user: Any, checked: list[str], cache_down: None, settings: Any
) -> None:
    settings.LOGIN_THROTTLE_PER_ACCOUNT = 3
    make_user("alice")
    assert [_attempt(i) for i in range(4)] == [401, 400, 401, 429]
    assert len(checked) == 3
    assert LoginCounter.objects.get(name="login:user:alice").count == 4


@pytest.mark.django_db
def test_an_account_window_that_began_before_a_cache_outage_is_not_forgotten_in_it(
    make_user: Any, checked: list[str], settings: Any
) -> None:
    """Attempts made while the cache answers still count once it fails: the limit holds across the start of an
    outage (an account count kept in the cache would start again from zero there, up to twice the limit)."""
    settings.LOGIN_THROTTLE_PER_ACCOUNT = 3
    make_user("alice")
    try:
        assert [_attempt(i) for i in range(2)] == [401, 400]
        _take_the_cache_down(settings)
        assert [_attempt(i) for i in range(2)] == [401, 429]
    finally:
        cache.reset_backend()
    assert len(checked) == 3
    assert LoginCounter.objects.get(name="login:user:alice").count == 4


@pytest.mark.django_db
def test_a_right_password_clears_the_account_count(
    make_user: Any, checked: list[str], cache_down: None
) -> None:
    make_user("alice")
    assert [_attempt(i) for i in range(2)] == [401, 400]
    assert _attempt(0, PASSWORD) == 201
    assert not LoginCounter.objects.filter(name="login:user:alice").exists()
    assert LoginCounter.objects.get(name="login:ip:127.0.0.1").count == 2  # the address keeps its failures


@pytest.mark.django_db
def test_ended_windows_are_pruned(settings: Any) -> None:
    import time

    from bazaar.accounts.tasks import prune_login_counters

    now = int(time.time())
    LoginCounter.objects.create(
        name="login:user:old", window_start=now - settings.LOGIN_THROTTLE_WINDOW - 1, count=3
    )
    LoginCounter.objects.create(name="login:user:new", window_start=now, count=2)
    assert prune_login_counters() == 1
    assert list(LoginCounter.objects.values_list("name", flat=True)) == ["login:user:new"]
