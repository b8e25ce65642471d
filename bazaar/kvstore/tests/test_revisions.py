"""Revisions and the change log: every committed write raises the tenant's revision by one (a batch or an import
is one), the answer carries it, every write leaves exactly its change rows, and a refused write leaves neither."""

from __future__ import annotations

import functools
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from bazaar.kvstore import services
from bazaar.kvstore.models import Change, Entry, Tenant
from bazaar.kvstore.tests.conftest import KV
from bazaar.kvstore.tests.test_concurrency import _run_threads

pytestmark = pytest.mark.django_db(transaction=True)


def _revision(kv: KV) -> int:
    return Tenant.objects.get(pk=kv.tenant.pk).revision


def _log(kv: KV) -> list[tuple[int, str, str, str | None, int]]:
    return list(
        Change.objects.filter(tenant=kv.tenant)
        .order_by("revision", "key")
        .values_list("revision", "key", "op", "value", "version")
    )


def test_each_write_is_one_revision_and_answers_it(kv: KV) -> None:
    r1 = kv.put("a", 1)
    r2 = kv.put("b", {"x": [1, 2]})
    r3 = kv.put("a", 2)
    assert [r.json()["revision"] for r in (r1, r2, r3)] == [1, 2, 3]
    assert [r["X-Revision"] for r in (r1, r2, r3)] == ["1", "2", "3"]
    assert [r.json()["version"] for r in (r1, r2, r3)] == [1, 1, 2]  # a key's version is its own
    d = kv.call("DELETE", "/keys/b")
    assert (d.status_code, d["X-Revision"]) == (204, "4")
    assert _revision(kv) == 4
    assert _log(kv) == [
        (1, "a", "set", "1", 1),
        (2, "b", "set", '{"x":[1,2]}', 1),
        (3, "a", "set", "2", 2),
        (4, "b", "delete", None, 2),
    ]


def test_reads_carry_the_revision_of_the_keys_last_write(kv: KV) -> None:
    kv.put("a", 1)
    kv.put("b", 1)
    for _ in range(2):  # a miss, then a cache hit: the same answer
        g = kv.get("a")
        assert (g.json()["revision"], g["X-Revision"]) == (1, "1")
    kv.put("a", 2)
    g = kv.get("a")
    assert (g.json()["revision"], g["X-Revision"], g.json()["version"]) == (3, "3", 2)
    page = kv.call("GET", "/keys").json()
    assert page["revision"] == 3
    assert [(i["key"], i["revision"]) for i in page["items"]] == [("a", 3), ("b", 2)]


def test_a_batch_is_one_revision(kv: KV) -> None:
    kv.put("a", 0)
    ops = [
        {"op": "set", "key": "b", "value": 1},
        {"op": "delete", "key": "a"},
        {"op": "set", "key": "c", "value": 2},
    ]
    r = kv.call("POST", "/batch", {"ops": ops})
    assert r.status_code == 200
    assert {x["revision"] for x in r.json()["results"]} == {2}
    assert _log(kv)[1:] == [(2, "a", "delete", None, 2), (2, "b", "set", "1", 1), (2, "c", "set", "2", 1)]


def test_an_import_is_one_revision(kv: KV) -> None:
    n = services.entries_import(
        tenant_id=kv.tenant.pk, records=iter([{"key": "x", "value": 1}, {"key": "y", "value": 2}])
    )
    assert n == 2
    assert _log(kv) == [(1, "x", "set", "1", 1), (1, "y", "set", "2", 1)]
    assert set(Entry.objects.values_list("key", "mod_revision")) == {("x", 1), ("y", 1)}


@pytest.mark.parametrize(
    ("method", "path", "data", "status"),
    [
        ("PUT", "/keys/a", {"value": 9, "if_version": 5}, 409),  # CAS mismatch
        ("PUT", "/keys/a", {"value": 9, "if_version": 0}, 409),  # create-only on a live key
        ("DELETE", "/keys/a?if_version=7", None, 409),
        ("DELETE", "/keys/nope", None, 404),
        (
            "POST",
            "/batch",
            {"ops": [{"op": "set", "key": "z", "value": 1}, {"op": "delete", "key": "nope"}]},
            404,
        ),
        ("PUT", "/keys/a", {"value": 9, "ttl": -1}, 422),
    ],
)
def test_a_refused_write_raises_no_revision_and_logs_nothing(
    kv: KV, method: str, path: str, data: Any, status: int
) -> None:
    kv.put("a", 1)
    before = (_revision(kv), _log(kv), list(Entry.objects.values_list("key", "version", "value")))
    r = kv.call(method, path, data)
    assert r.status_code == status, r.content
    assert (_revision(kv), _log(kv), list(Entry.objects.values_list("key", "version", "value"))) == before
    assert kv.put("a", 2).json()["revision"] == 2  # no gap after a refusal


def test_a_cas_write_is_logged_at_its_revision(kv: KV) -> None:
    kv.put("a", 1)
    r = kv.put("a", 2, if_version=1)
    assert (r.status_code, r.json()["revision"], r.json()["version"]) == (200, 2, 2)
    assert _log(kv)[-1] == (2, "a", "set", "2", 2)


def test_revisions_are_per_tenant(kv: KV, other: KV) -> None:
    kv.put("a", 1)
    kv.put("a", 2)
    assert other.put("a", 1).json()["revision"] == 1


def test_the_purge_logs_expiries_not_deletes(kv: KV) -> None:
    kv.put("ttl", "x", ttl=1)
    kv.put("gone", "y")
    kv.call("DELETE", "/keys/gone")
    removed = services.entries_purge_expired(now=timezone.now() + timedelta(seconds=5))
    assert removed == 2
    assert _log(kv)[-1] == (4, "ttl", "expire", None, 1)
    assert _revision(kv) == 4
    assert services.entries_purge_expired(now=timezone.now() + timedelta(seconds=5)) == 0
    assert _revision(kv) == 4  # nothing expired: no revision


@pytest.mark.postgres
def test_concurrent_writers_get_gapless_revisions_in_commit_order(kv: KV) -> None:
    """16 threads × 25 PUTs on 4 keys (PostgreSQL): revisions 1..400 exactly once, and for every key the change
    log's versions rise with the revisions (a revision order that is the commit order)."""
    answers: list[int] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for i in range(25):
            result = services.entry_set(tenant_id=kv.tenant.pk, key=f"k{(n + i) % 4}", value=i)
            with lock:
                answers.append(result.revision)

    assert _run_threads([functools.partial(writer, n) for n in range(16)]) == []
    assert sorted(answers) == list(range(1, 401))
    log = _log(kv)
    assert [row[0] for row in log] == list(range(1, 401))
    for key in ("k0", "k1", "k2", "k3"):
        versions = [row[4] for row in log if row[1] == key]
        assert versions == list(range(1, len(versions) + 1))
    assert _revision(kv) == 400


@pytest.mark.parametrize("named_max", [10_000, 1], ids=["keys-named", "namespace-dropped"])
def test_an_import_over_live_and_dead_keys_upserts_logs_and_leaves_no_stale_read(
    kv: KV, monkeypatch: pytest.MonkeyPatch, named_max: int
) -> None:
    """The same answers from the set-based import (PostgreSQL: COPY + one statement) and the row-by-row one
    (SQLite): a live key's version goes up and it keeps created_at, a deleted key is revived with version + 1, a
    new key starts at 1, a TTL is stored; one revision, one change row per key; and a read cached before the
    import is never served after it, whether the import names its keys or drops the whole cache namespace."""
    from bazaar.kvstore.services import imports

    monkeypatch.setattr(imports, "NAMED_INVALIDATION_MAX", named_max)
    kv.put("live", "old")
    kv.put("dead", 1)
    kv.call("DELETE", "/keys/dead")
    assert kv.get("live").json()["value"] == "old"  # cached now
    created = Entry.objects.get(key="live").created_at
    before = _revision(kv)
    records: list[dict[str, Any]] = [
        {"key": "live", "value": "new"},
        {"key": "dead", "value": 2},
        {"key": "fresh", "value": {"a": [1]}, "ttl": 600},
    ]
    assert services.entries_import(tenant_id=kv.tenant.pk, records=iter(records)) == 3
    assert _revision(kv) == before + 1
    rows = {e.key: e for e in Entry.objects.filter(tenant=kv.tenant)}
    assert {k: (e.value, e.version, e.mod_revision) for k, e in rows.items()} == {
        "live": ('"new"', 2, before + 1),
        "dead": ("2", 3, before + 1),
        "fresh": ('{"a":[1]}', 1, before + 1),
    }
    assert rows["live"].created_at == created
    assert rows["fresh"].expires_at is not None
    assert 590 <= (rows["fresh"].expires_at - timezone.now()).total_seconds() <= 600
    assert [c for c in _log(kv) if c[0] == before + 1] == [
        (before + 1, "dead", "set", "2", 3),
        (before + 1, "fresh", "set", '{"a":[1]}', 1),
        (before + 1, "live", "set", '"new"', 2),
    ]
    assert kv.get("live").json()["value"] == "new"
    assert kv.get("dead").json()["value"] == 2
