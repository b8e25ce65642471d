"""A key's history (GET /keys/{key}/history), the change feed a watch reads (``changes_since``), and the
compaction that trims both to the tenant's retention."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.wsgi import get_wsgi_application
from django.utils import timezone

from bazaar.core.fastpath import FastPath
from bazaar.core.testing import wsgi_get
from bazaar.kvstore import selectors, services, tasks
from bazaar.kvstore.models import Change, Tenant
from bazaar.kvstore.tests.conftest import KV

pytestmark = pytest.mark.django_db(transaction=True)


def _history(kv: KV, key: str, query: str = "") -> Any:
    r = kv.call("GET", f"/keys/{key}/history{query}")
    assert r.status_code == 200, r.content
    return r.json()


def test_history_lists_values_versions_and_ops_newest_first(kv: KV) -> None:
    kv.put("cfg/a", {"n": 1})
    kv.put("other", 0)
    kv.put("cfg/a", {"n": 2})
    kv.call("DELETE", "/keys/cfg/a")
    kv.put("cfg/a", "back")
    h = _history(kv, "cfg/a")
    assert [(i["revision"], i["op"], i["value"], i["version"]) for i in h["items"]] == [
        (5, "set", "back", 4),
        (4, "delete", None, 3),
        (3, "set", {"n": 2}, 2),
        (1, "set", {"n": 1}, 1),
    ]
    assert (h["key"], h["next_before"], h["revision"], h["compacted_revision"]) == ("cfg/a", None, 5, 0)
    assert h["items"][0]["at"].endswith("Z")


def test_history_pages_by_revision(kv: KV) -> None:
    for i in range(5):
        kv.put("k", i)
    first = _history(kv, "k", "?limit=2")
    assert [i["revision"] for i in first["items"]] == [5, 4]
    assert first["next_before"] == 4
    second = _history(kv, "k", "?limit=2&before=4")
    assert [i["revision"] for i in second["items"]] == [3, 2]
    last = _history(kv, "k", f"?limit=2&before={second['next_before']}")
    assert ([i["revision"] for i in last["items"]], last["next_before"]) == ([1], None)


def test_history_of_another_tenant_is_not_visible(kv: KV, other: KV) -> None:
    kv.put("k", "secret")
    assert _history(other, "k")["items"] == []


@pytest.mark.parametrize(
    ("query", "code"),
    [("?limit=0", "invalid_limit"), ("?limit=100000", "invalid_limit"), ("?before=0", "invalid_revision")],
)
def test_bad_history_queries_are_refused(kv: KV, query: str, code: str) -> None:
    kv.put("k", 1)
    r = kv.call("GET", f"/keys/k/history{query}")
    assert (r.status_code, r.json()["code"]) == (422, code)


def test_the_fast_path_leaves_history_to_django(kv: KV) -> None:
    kv.put("k", 1)
    kv.get("k")  # the key is known to this process and cached
    app = FastPath(get_wsgi_application())
    status, _headers, body = wsgi_get(app, "/api/kv/keys/k/history", HTTP_AUTHORIZATION=f"Bearer {kv.secret}")
    assert status.startswith("200")
    assert json.loads(body)["items"][0]["op"] == "set"


def test_changes_since_is_complete_ordered_and_filtered(kv: KV) -> None:
    kv.put("app/a", 1)
    kv.put("zzz", 1)
    kv.call(
        "POST",
        "/batch",
        {"ops": [{"op": "set", "key": "app/b", "value": 2}, {"op": "set", "key": "app/c", "value": 3}]},
    )
    got = selectors.changes_since(tenant_id=kv.tenant.pk, since=0, prefix="app/")
    assert [(c["revision"], c["key"]) for c in got["items"]] == [(1, "app/a"), (3, "app/b"), (3, "app/c")]
    assert got["revision"] == 3
    assert selectors.changes_since(tenant_id=kv.tenant.pk, since=3)["items"] == []
    # A page never splits a revision: the batch (revision 3) comes whole or not at all.
    page = selectors.changes_since(tenant_id=kv.tenant.pk, since=1, limit=2)
    assert ([c["revision"] for c in page["items"]], page["revision"]) == ([2], 2)
    big = selectors.changes_since(tenant_id=kv.tenant.pk, since=2, limit=1)
    assert ([c["key"] for c in big["items"]], big["revision"]) == (["app/b", "app/c"], 3)


def test_compaction_by_count_and_the_410_after_it(kv: KV) -> None:
    services.tenant_set_retention(tenant_id=kv.tenant.pk, revisions=2, seconds=None)
    for i in range(5):
        kv.put("k", i)
    assert tasks.compact_history() == 3
    assert list(Change.objects.values_list("revision", flat=True).order_by("revision")) == [4, 5]
    h = _history(kv, "k")
    assert ([i["revision"] for i in h["items"]], h["compacted_revision"]) == ([5, 4], 3)
    with pytest.raises(selectors.RevisionCompacted) as gone:
        selectors.changes_since(tenant_id=kv.tenant.pk, since=2)
    assert gone.value.status == 410
    assert gone.value.code == "revision_compacted"
    assert gone.value.details == {"since": 2, "compacted_revision": 3}
    assert [c["revision"] for c in selectors.changes_since(tenant_id=kv.tenant.pk, since=3)["items"]] == [
        4,
        5,
    ]
    assert services.changes_compact() == 0  # nothing more to trim


def test_compaction_by_age(kv: KV) -> None:
    services.tenant_set_retention(tenant_id=kv.tenant.pk, revisions=None, seconds=60)
    kv.put("k", 1)
    kv.put("k", 2)
    assert services.changes_compact(now=timezone.now() + timedelta(seconds=30)) == 0
    assert services.changes_compact(now=timezone.now() + timedelta(seconds=120)) == 2
    assert Tenant.objects.get(pk=kv.tenant.pk).compacted_revision == 2


@pytest.mark.parametrize(("revisions", "seconds"), [(0, None), (None, -5), (2**31, None)])
def test_bad_retention_is_refused_and_writes_nothing(
    kv: KV, revisions: int | None, seconds: int | None
) -> None:
    from bazaar.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        services.tenant_set_retention(tenant_id=kv.tenant.pk, revisions=revisions, seconds=seconds)
    t = Tenant.objects.get(pk=kv.tenant.pk)
    assert (t.history_revisions, t.history_seconds) == (10_000, None)
