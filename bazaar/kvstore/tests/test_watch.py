"""GET /api/kv/watch: the long-poll wakes on a commit and misses nothing; server-sent events; 410 after
compaction; bad input refused."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from bazaar.core.testing import wait_until
from bazaar.kvstore import services, watch
from bazaar.kvstore.tests.conftest import KV

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_batch_of_what_changed_after_since(kv: KV) -> None:
    kv.put("app/a", 1)
    kv.put("other", 1)
    kv.call("DELETE", "/keys/app/a")
    r = kv.call("GET", "/watch?prefix=app/&since=0")
    assert r.status_code == 200
    body = r.json()
    assert [(c["revision"], c["key"], c["op"]) for c in body["items"]] == [
        (1, "app/a", "set"),
        (3, "app/a", "delete"),
    ]
    assert (body["revision"], r["X-Revision"]) == (3, "3")


def test_a_read_then_a_watch_from_its_revision_misses_nothing(kv: KV) -> None:
    kv.put("k1", "a")
    page = kv.call("GET", "/keys").json()
    kv.put("k2", "b")  # written after the read
    got = kv.call("GET", f"/watch?since={page['revision']}").json()
    assert [c["key"] for c in got["items"]] == ["k2"]


def test_the_long_poll_waits_and_wakes_on_a_commit(kv: KV) -> None:
    kv.put("k", 0)
    answer: dict[str, Any] = {}

    def watcher() -> None:
        try:
            started = time.monotonic()
            answer["r"] = kv.call("GET", "/watch?since=1&wait=10")
            answer["took"] = time.monotonic() - started
        finally:
            connection.close()

    t = threading.Thread(target=watcher)
    t.start()
    wait_until(lambda: _waiting(watch, kv.tenant.pk) == 1, what="the long-poll waits")
    assert t.is_alive()  # it is waiting: nothing changed after revision 1
    kv.put("k", 1)
    t.join(10)
    assert answer["r"].status_code == 200
    assert [(c["revision"], c["value"]) for c in answer["r"].json()["items"]] == [(2, 1)]
    assert answer["took"] < 5  # woken by the commit, not by the 10 s timeout


def test_the_long_poll_times_out_empty(kv: KV) -> None:
    kv.put("k", 0)
    started = time.monotonic()
    r = kv.call("GET", "/watch?since=1&wait=1")
    assert (r.json(), r.status_code) == ({"items": [], "revision": 1}, 200)
    assert time.monotonic() - started >= 0.9


@override_settings(KVSTORE_WATCH_STREAM_SECONDS=1)
def test_server_sent_events_carry_each_change_with_its_revision_as_id(kv: KV) -> None:
    kv.put("a", 1)
    kv.put("b", {"x": 2})
    r = kv.call("GET", "/watch?since=0", HTTP_ACCEPT="text/event-stream")
    assert r.status_code == 200
    assert r["Content-Type"] == "text/event-stream"
    text = b"".join(r.streaming_content).decode()
    assert 'id: 1\nevent: change\ndata: {"revision":1,"key":"a","op":"set","value":1' in text
    assert 'id: 2\nevent: change\ndata: {"revision":2,"key":"b","op":"set","value":{"x":2}' in text
    resumed = kv.call("GET", "/watch", HTTP_ACCEPT="text/event-stream", HTTP_LAST_EVENT_ID="1")
    body = b"".join(resumed.streaming_content).decode()
    assert "id: 1\n" not in body
    assert "id: 2\n" in body


def test_a_compacted_since_is_410_with_where_to_resume(kv: KV) -> None:
    services.tenant_set_retention(tenant_id=kv.tenant.pk, revisions=1, seconds=None)
    for i in range(3):
        kv.put("k", i)
    services.changes_compact()
    for headers in ({}, {"HTTP_ACCEPT": "text/event-stream"}):
        r = kv.call("GET", "/watch?since=0", **headers)
        assert r.status_code == 410
        assert (r.json()["code"], r.json()["details"]["compacted_revision"]) == ("revision_compacted", 2)
    assert [c["revision"] for c in kv.call("GET", "/watch?since=2").json()["items"]] == [3]


@override_settings(KVSTORE_WATCH_MAX_WAITING=0)
def test_a_full_server_answers_at_once_or_503(kv: KV) -> None:
    kv.put("k", 0)
    started = time.monotonic()
    assert kv.call("GET", "/watch?since=1&wait=30").json()["items"] == []
    assert time.monotonic() - started < 5
    r = kv.call("GET", "/watch?since=1", HTTP_ACCEPT="text/event-stream")
    assert (r.status_code, r.json()["code"]) == (503, "watch_busy")


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("since=-1", "invalid_revision"),
        ("wait=61", "invalid_wait"),
        ("wait=-1", "invalid_wait"),
        ("limit=0", "invalid_limit"),
    ],
)
def test_bad_watch_queries_are_refused(kv: KV, query: str, code: str) -> None:
    r = kv.call("GET", f"/watch?{query}")
    assert (r.status_code, r.json()["code"]) == (422, code)


def _waiting(watch: Any, tenant_id: int) -> int:
    """Long-polls waiting in this process on ``tenant_id`` (the hub's count, read under its lock). Per tenant: a
    long-poll another test left waiting (its own tenant) must not count as this one."""
    with watch.hub.cond:
        return int(watch.hub.waiting.get(tenant_id, 0))


def _long_poll_in_thread(kv: KV, answer: dict[str, Any]) -> threading.Thread:
    def watcher() -> None:
        try:
            answer["r"] = kv.call("GET", "/watch?since=1&wait=10")
        finally:
            connection.close()

    t = threading.Thread(target=watcher)
    t.start()
    wait_until(lambda: _waiting(watch, kv.tenant.pk) == 1, what="the long-poll waits")
    return t


def test_the_poller_outlives_a_poll_that_fails_with_any_error(
    kv: KV, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One poll raising something that is not a database error (seen: pytest-django refusing a poll that ran
    after its test) must not end the poller: a waiter would then sleep to its timeout, since only a new waiter
    restarts it."""
    from bazaar.kvstore.models import Tenant

    class FailsOnce:
        failed = 0

        @property
        def objects(self) -> Any:
            if not FailsOnce.failed:
                FailsOnce.failed += 1
                raise RuntimeError("a poll that fails")
            return Tenant.objects

    kv.put("k", 0)
    monkeypatch.setattr(watch, "Tenant", FailsOnce())
    answer: dict[str, Any] = {}
    t = _long_poll_in_thread(kv, answer)
    wait_until(lambda: FailsOnce.failed, what="a poll failed")
    kv.put("k", 1)
    t.join(10)
    assert [(c["revision"], c["value"]) for c in answer["r"].json()["items"]] == [(2, 1)]
    assert "the watch poller's poll failed" in caplog.text


def test_an_idle_poller_holds_no_database_connection(kv: KV) -> None:
    """After the last waiter leaves, the poller closes its connection at its next turn, not when it exits 5 s
    later (it kept a pooler slot busy, and a test database that pytest then could not drop)."""
    if connection.vendor != "postgresql":
        pytest.skip("counts the database's sessions in pg_stat_activity (PostgreSQL)")

    def others() -> set[int]:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return {int(row[0]) for row in cur.fetchall()}

    kv.put("k", 0)
    # Sessions an earlier test's threads left to the garbage collector are not this test's subject: only the
    # sessions that appear during it must be gone.
    before = others()
    answer: dict[str, Any] = {}
    t = _long_poll_in_thread(kv, answer)
    # The poller connects; the request's own session appears only when this process has not verified the API key
    # lately (bearer tokens are re-checked every 30 s), so after other tests in the same worker it may not.
    wait_until(lambda: len(others() - before) >= 1, what="the poller is connected")
    kv.put("k", 1)
    t.join(10)
    assert [c["revision"] for c in answer["r"].json()["items"]] == [2]
    # Within 3 s: the poller closes at its next turn (0.1 s); it would exit, closing, only after 5 s idle.
    wait_until(lambda: not others() - before, timeout=3, what="no session left that this test opened")
