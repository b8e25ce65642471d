"""The WSGI fast path serves anonymous cache hits with the view's headers, and defers everything else."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.wsgi import get_wsgi_application
from django.test import Client

from bazaar.core import cache
from bazaar.core.fastpath import FastPath
from bazaar.core.testing import wsgi_get
from bazaar.core.views import HOME_SCOPE


def _call(app: FastPath, path: str = "/", **extra: str) -> tuple[str, dict[str, str], bytes]:
    return wsgi_get(app, path, **extra)


@pytest.fixture
def app() -> FastPath:
    return FastPath(get_wsgi_application())


@pytest.mark.django_db(transaction=True)
def test_hit_is_served_before_django_with_the_views_headers(app: FastPath, client: Client) -> None:
    first = client.get("/")
    assert first["X-Cache"] == "miss"
    status, headers, body = _call(app)
    assert status == "200 OK"
    assert headers["X-Cache"] == "hit"
    assert body == first.content
    assert headers["ETag"] == first["ETag"]
    assert headers["Cache-Control"] == first["Cache-Control"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Length"] == str(len(body))


@pytest.mark.django_db(transaction=True)
def test_if_none_match_gives_304(app: FastPath, client: Client) -> None:
    etag = client.get("/")["ETag"]
    status, _headers, body = _call(app, HTTP_IF_NONE_MATCH=etag)
    assert status == "304 Not Modified"
    assert body == b""


@pytest.mark.django_db(transaction=True)
def test_invalidated_entry_goes_to_django(app: FastPath, client: Client) -> None:
    client.get("/")
    cache.invalidate(HOME_SCOPE)
    status, headers, _ = _call(app)
    assert status.startswith("200")
    assert headers.get("X-Cache") == "miss"  # rebuilt by the view
    assert _call(app)[1]["X-Cache"] == "hit"


@pytest.mark.django_db(transaction=True)
def test_session_cookie_bad_host_and_post_bypass(
    app: FastPath, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.get("/")
    peeks: list[object] = []
    real_peek = cache.peek

    def spy(*a: Any) -> Any:
        peeks.append(a)
        return real_peek(*a)

    monkeypatch.setattr(cache, "peek", spy)
    assert _call(app, HTTP_COOKIE="sessionid=abc")[0].startswith("200")
    assert peeks == []  # a possibly signed-in visitor always goes through Django
    assert _call(app, HTTP_HOST="evil.example")[0].startswith("400")
    assert _call(app, REQUEST_METHOD="POST")[0].startswith(("403", "405"))


def test_the_request_signals_have_only_the_receivers_database_stands_in_for() -> None:
    """``fastpath.database`` does the connection upkeep of Django's request signals instead of sending them; a
    receiver connected later (by an app or a library) would be skipped on the fast paths, so this fails first."""
    from django.core import signals

    from bazaar.core.fastpath import DJANGO_REQUEST_RECEIVERS

    for name, expected in DJANGO_REQUEST_RECEIVERS.items():
        sync, asynchronous = getattr(signals, name)._live_receivers(None)
        assert {f"{r.__module__}.{r.__qualname__}" for r in [*sync, *asynchronous]} == expected, name


@pytest.mark.django_db(transaction=True)
def test_database_closes_an_obsolete_or_broken_connection_before_and_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from django.db import connections

    from bazaar.core.fastpath import database

    conn = connections["default"]
    conn.ensure_connection()
    closed: list[str] = []
    monkeypatch.setattr(conn, "close", lambda: closed.append("closed"))
    conn.close_at = time.monotonic() - 1  # past CONN_MAX_AGE
    with database({}):
        assert closed == ["closed"]  # on the way in
        conn.close_at = None
        conn.errors_occurred = True  # a statement failed ...
        monkeypatch.setattr(conn, "is_usable", lambda: False)  # ... and the connection is gone
    assert closed == ["closed", "closed"]  # and on the way out
    conn.errors_occurred = False
    with database({}):
        pass
    assert len(closed) == 2  # a healthy connection is kept


@pytest.mark.django_db
def test_database_leaves_a_connection_inside_a_transaction_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from django.db import connections

    from bazaar.core.fastpath import database

    conn = connections["default"]
    conn.ensure_connection()
    closed: list[str] = []
    monkeypatch.setattr(conn, "close", lambda: closed.append("closed"))
    conn.close_at = time.monotonic() - 1
    with database({}):
        pass
    assert closed == []  # only a test calls a handler inside a transaction; closing would end the test's
    conn.close_at = None
