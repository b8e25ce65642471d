"""The sick-database guards on every PostgreSQL connection (bazaar.core.db, the DATABASES OPTIONS)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import OperationalError, connection

from bazaar.core import db


@pytest.fixture(autouse=True)
def _closed_breaker() -> Iterator[None]:
    yield
    db.BREAKER.succeeded()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_every_connection_has_a_statement_timeout_and_keepalives(settings: object) -> None:
    with connection.cursor() as cur:
        cur.execute("SHOW statement_timeout")
        assert cur.fetchone() == ("5s",)
    params = connection.connection.info.get_parameters()
    assert (params["keepalives"], params["keepalives_idle"], params["keepalives_count"]) == ("1", "10", "3")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_server_cancels_a_statement_past_statement_timeout() -> None:
    with connection.cursor() as cur:
        cur.execute("SET statement_timeout = 200")
        with pytest.raises(OperationalError, match="statement timeout"):
            cur.execute("SELECT pg_sleep(2)")
        cur.execute("RESET statement_timeout")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_statement_past_the_client_deadline_is_cut() -> None:
    """The server is asked to sleep past the client deadline (as a paused server would): the watchdog cuts the
    connection, the statement raises OperationalError, the breaker opens, and once it closes the next use gets a
    fresh connection."""
    cut = db.WATCHDOG.cut
    with db.deadline(0.3), pytest.raises(OperationalError), connection.cursor() as cur:
        cur.execute("SELECT pg_sleep(3)")
    assert db.WATCHDOG.cut == cut + 1
    assert db.BREAKER.is_open
    connection.close()
    # While the breaker is open, a new connection is not even attempted: a 503 at once, not after connect_timeout.
    with pytest.raises(OperationalError, match="not answering"):
        connection.ensure_connection()
    db.BREAKER.succeeded()
    with connection.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_long_statements_lift_both_limits_for_one_transaction() -> None:
    from django.db import transaction

    cut = db.WATCHDOG.cut
    # The outer deadline would cut a 0.4 s statement; inside long_statements there is none.
    with db.deadline(0.2), transaction.atomic(), db.long_statements(60), connection.cursor() as cur:
        cur.execute("SHOW statement_timeout")
        assert cur.fetchone() == ("1min",)
        cur.execute("SELECT pg_sleep(0.4)")
    assert db.WATCHDOG.cut == cut
    with connection.cursor() as cur:
        cur.execute("SHOW statement_timeout")
        assert cur.fetchone() == ("5s",)


def test_the_breaker_lets_one_probe_through_after_its_time() -> None:
    """Open: nobody passes. After DATABASE_BREAKER_SECONDS: exactly one caller probes; a probe without a verdict
    (refused at once) lets the next one try; a success closes it."""
    breaker = db.Breaker()
    breaker._open_until = 1.0  # opened long ago (monotonic clock): its time is up
    assert breaker.allow() is True
    assert breaker.allow() is False  # the probe is out
    breaker.release()
    assert breaker.allow() is True
    breaker.succeeded()
    assert (breaker.is_open, breaker.allow(), breaker.allow()) == (False, True, True)
    breaker.failed()
    assert (breaker.is_open, breaker.allow()) == (True, False)


def test_the_watchdog_wakes_for_an_earlier_deadline_only_and_keeps_its_heap_small() -> None:
    """A statement costs no thread switch unless its deadline comes before every other in flight; an earlier one
    still wakes the watchdog and is cut on time (with every round trip in flight, as the watchdog does)."""
    import socket
    import time

    dog = db._Watchdog()
    long_a, long_b = socket.socketpair()
    short_a, short_b = socket.socketpair()
    try:
        for _ in range(10_000):  # round trips that finished in time leave the heap bounded
            dog.done(dog.watch(long_a.fileno(), 60))
        assert len(dog._heap) <= 1025
        dog.watch(long_a.fileno(), 60)
        started = time.monotonic()
        dog.watch(short_a.fileno(), 0.2)  # before the 60 s one: the sleeping thread is woken for it
        while dog.cut < 2 and time.monotonic() - started < 10:
            time.sleep(0.02)
        assert dog.cut == 2
        assert time.monotonic() - started < 5
        assert short_a.recv(1) == b""  # shut down: reads end at once
    finally:
        for s in (long_a, long_b, short_a, short_b):
            s.close()


def test_a_forked_child_gets_a_watchdog_of_its_own() -> None:
    """Threads do not survive a fork: the child starts its own watchdog thread (``os.register_at_fork``, not an
    ``os.getpid()`` per statement) and still cuts a round trip past its deadline."""
    import os
    import socket
    import time

    a, b = socket.socketpair()
    db.WATCHDOG.done(db.WATCHDOG.watch(a.fileno(), 60))  # the parent's thread is running
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if its own watchdog cut the round trip in time
        code = 1
        try:
            cut = db.WATCHDOG.cut
            db.WATCHDOG.watch(a.fileno(), 0.1)
            started = time.monotonic()
            while db.WATCHDOG.cut == cut and time.monotonic() - started < 5:
                time.sleep(0.01)
            code = 0 if db.WATCHDOG.cut == cut + 1 and a.recv(1) == b"" else 2
        finally:
            os._exit(code)
    try:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        a.close()
        b.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_idle_connection_whose_backend_ended_is_replaced_before_its_next_use() -> None:
    """A restart or pg_terminate_backend ends an idle connection's session: the request upkeep drops it (one poll
    shows the server spoke first) so the next request gets a fresh connection instead of a 503. A healthy idle
    connection is kept without a round trip."""
    import time

    from django.db import connections

    idle = connections.create_connection("default")
    try:
        idle.ensure_connection()
        first_pid = idle.connection.info.backend_pid
        checks: list[bool] = []
        real_is_usable = idle.is_usable

        def counted() -> bool:
            checks.append(real_is_usable())
            return checks[-1]

        idle.is_usable = counted  # type: ignore[method-assign]
        idle.close_if_unusable_or_obsolete()
        assert idle.connection is not None
        assert idle.connection.info.backend_pid == first_pid
        assert checks == [], "a healthy idle connection costs no round trip"

        with connection.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", [first_pid])
            assert cur.fetchone() == (True,)
        deadline = time.monotonic() + 5
        while not db.spoke_first(db.socket_of(idle)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert db.spoke_first(db.socket_of(idle))

        idle.close_if_unusable_or_obsolete()
        assert checks == [False]
        assert idle.connection is None, "the ended session was dropped before any statement failed on it"
        with idle.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            row = cur.fetchone()
        assert row is not None
        assert row[0] != first_pid
    finally:
        idle.close()
