"""The KV PUT's group commit on PostgreSQL: a group of plain PUTs is written as if they had committed one after
another (consecutive revisions in the group's order, versions, revivals, TTLs, one change row each), a PUT whose
tenant is gone fails alone, and concurrent writers through the service get exactly the answers the log records."""

from __future__ import annotations

import functools
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from bazaar.core.errors import NotFound
from bazaar.kvstore import services
from bazaar.kvstore.models import Change, Entry, Tenant
from bazaar.kvstore.services.entries import PUTS, SetOp, _Put, _puts_apply
from bazaar.kvstore.tests.conftest import KV
from bazaar.kvstore.tests.test_concurrency import _run_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _set(tenant: Tenant, key: str, value: str, ttl: int | None = None) -> _Put:
    now = timezone.now()
    return _Put(
        tenant.pk, SetOp(key, value, None if ttl is None else now + timedelta(seconds=ttl), None), now
    )


def test_a_group_is_written_as_consecutive_puts(kv: KV, other: KV) -> None:
    kv.put("dead", "old")
    assert kv.call("DELETE", "/keys/dead").status_code == 204  # revision 2; the tombstone is version 2
    kv.put("live", 1)  # revision 3
    items = [
        _set(kv.tenant, "new", "1"),
        _set(other.tenant, "new", "2"),
        _set(kv.tenant, "live", "3", ttl=60),
        _Put(999_999, SetOp("x", "0", None, None), timezone.now()),
        _set(kv.tenant, "dead", '"again"'),
    ]
    out = _puts_apply(items)
    assert out[0] == (1, 4)
    assert out[2] == (2, 5)
    assert out[4] == (3, 6)
    assert out[1] == (1, 1)  # the other tenant's own revisions
    assert isinstance(out[3], NotFound)
    assert out[3].code == "tenant_not_found"
    assert Tenant.objects.get(pk=kv.tenant.pk).revision == 6
    log = list(
        Change.objects.filter(tenant=kv.tenant, revision__gte=4)
        .order_by("revision")
        .values_list("revision", "key", "op", "value", "version")
    )
    assert log == [(4, "new", "set", "1", 1), (5, "live", "set", "3", 2), (6, "dead", "set", '"again"', 3)]
    live = Entry.objects.get(tenant=kv.tenant, key="live")
    assert live.expires_at is not None
    assert live.mod_revision == 5
    dead = Entry.objects.get(tenant=kv.tenant, key="dead")
    assert (dead.expires_at, dead.value, dead.mod_revision) == (None, '"again"', 6)
    assert dead.created_at == items[4].now  # revived: created anew
    assert kv.get("dead").json()["value"] == "again"  # the cached tombstone was dropped after the commit
    assert not Entry.objects.filter(tenant_id=999_999).exists()


def test_concurrent_puts_answer_what_the_log_records(kv: KV, other: KV) -> None:
    """16 threads × 30 PUTs of distinct keys over two tenants: every answer is the (version, revision) its change
    row records, each tenant's revisions are 1..n without a gap, and every value reads back through the API."""
    answers: list[tuple[int, str, int, int]] = []
    lock = threading.Lock()
    before = PUTS.items

    def writer(n: int) -> None:
        tenant = (kv, other)[n % 2].tenant
        for i in range(30):
            result = services.entry_set(tenant_id=tenant.pk, key=f"w{n}-{i}", value=[n, i])
            with lock:
                answers.append((tenant.pk, result.key, result.version, result.revision))

    assert _run_threads([functools.partial(writer, n) for n in range(16)]) == []
    assert PUTS.items - before >= 480  # every PUT went through the group commit
    logged = set(Change.objects.values_list("tenant_id", "key", "version", "revision"))
    assert set(answers) == logged
    assert len(logged) == 480
    for side in (kv, other):
        revisions = sorted(r for t, _k, _v, r in answers if t == side.tenant.pk)
        assert revisions == list(range(1, 241))
        assert Tenant.objects.get(pk=side.tenant.pk).revision == 240
    assert kv.get("w0-29").json()["value"] == [0, 29]
    assert other.get("w15-0").json()["value"] == [15, 0]
