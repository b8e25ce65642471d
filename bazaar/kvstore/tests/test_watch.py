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
