"""POST /api/kv/txn (compares, success/failure ops, all or nothing, one revision) and the atomic increment."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from bazaar.kvstore import services
from bazaar.kvstore.models import Change, Entry, Tenant
from bazaar.kvstore.tests.conftest import KV
from bazaar.kvstore.tests.test_concurrency import _run_threads

pytestmark = pytest.mark.django_db(transaction=True)


def _state(kv: KV) -> tuple[Any, ...]:
    return (
        Tenant.objects.get(pk=kv.tenant.pk).revision,
        list(Entry.objects.order_by("key").values_list("key", "value", "version", "expires_at")),
        Change.objects.count(),
    )


def _txn(kv: KV, body: dict[str, Any], status: int = 200) -> Any:
    r = kv.call("POST", "/txn", body)
    assert r.status_code == status, r.content
    return r.json()


def test_success_branch_runs_when_every_compare_holds(kv: KV) -> None:
    kv.put("lock", "free")
    kv.put("n", 3)
    out = _txn(
        kv,
        {
            "compare": [
                {"key": "lock", "target": "value", "value": "free"},
                {"key": "lock", "target": "version", "op": "=", "value": 1},
                {"key": "n", "target": "value", "op": ">", "value": 2},
                {"key": "absent", "target": "exists", "value": False},
                {"key": "n", "target": "revision", "op": "<", "value": 3},
            ],
            "success": [
                {"op": "put", "key": "lock", "value": "taken", "ttl": 30},
                {"op": "incr", "key": "n", "by": 10},
                {"op": "get", "key": "n"},
            ],
            "failure": [{"op": "get", "key": "lock"}],
        },
    )
    assert out["succeeded"] is True
    assert out["revision"] == 3
    assert out["results"] == [
        {"op": "put", "key": "lock", "version": 2},
        {"op": "incr", "key": "n", "value": 13, "version": 2},
        {"op": "get", "key": "n", "found": True, "value": 13, "version": 2, "revision": 3},
    ]
    assert kv.get("lock").json()["value"] == "taken"
    assert set(Change.objects.filter(revision=3).values_list("key", flat=True)) == {"lock", "n"}


def test_failure_branch_runs_otherwise_and_a_read_only_txn_raises_no_revision(kv: KV) -> None:
    kv.put("lock", "taken")
    out = _txn(
        kv,
        {
            "compare": [{"key": "lock", "target": "value", "op": "=", "value": "free"}],
            "success": [{"op": "put", "key": "lock", "value": "mine"}],
            "failure": [{"op": "get", "key": "lock"}, {"op": "get", "key": "nope"}],
        },
    )
    assert (out["succeeded"], out["revision"]) == (False, 1)
    assert out["results"][0]["value"] == "taken"
    assert out["results"][1]["found"] is False
    assert Tenant.objects.get(pk=kv.tenant.pk).revision == 1


@pytest.mark.parametrize(
    ("compare", "holds"),
    [
        (
            {"key": "k", "target": "value", "op": "!=", "value": "5"},
            True,
        ),  # the string "5" is not the number 5
        ({"key": "k", "target": "value", "op": "<", "value": "text"}, False),  # a number is not below text
        ({"key": "k", "target": "version", "op": ">", "value": 0}, True),
        ({"key": "missing", "target": "version", "value": 0}, True),
        ({"key": "missing", "target": "value", "op": "!=", "value": 1}, False),
        ({"key": "k", "target": "exists", "op": "!=", "value": True}, False),
    ],
)
def test_compare_semantics(kv: KV, compare: dict[str, Any], holds: bool) -> None:
    kv.put("k", 5)
    assert _txn(kv, {"compare": [compare]})["succeeded"] is holds


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"success": [{"op": "put", "key": "new", "value": 1}, {"op": "delete", "key": "nope"}]},
            404,
            "key_not_found",
        ),
        (
            {"success": [{"op": "put", "key": "new", "value": 1}, {"op": "incr", "key": "text"}]},
            409,
            "not_a_number",
        ),
        (
            {"success": [{"op": "put", "key": "a", "value": 1}, {"op": "delete", "key": "a"}]},
            422,
            "duplicate_key",
        ),
        ({"success": [{"op": "put", "key": "a"}]}, 422, "missing_value"),
        ({"success": [{"op": "get", "key": "a", "ttl": 5}]}, 422, "invalid_op"),
        ({"compare": [{"key": "a", "target": "version", "value": "1"}]}, 422, "invalid_compare"),
        ({"compare": [{"key": "a", "target": "exists", "op": "<", "value": True}]}, 422, "invalid_compare"),
        ({"compare": [{"key": "a", "target": "size", "value": 1}]}, 422, "validation_error"),
        ({"success": [{"op": "get", "key": f"k{i}"} for i in range(101)]}, 422, "too_many_ops"),
        ({"success": [{"op": "put", "key": "", "value": 1}]}, 422, "invalid_key"),
        ({"success": [{"op": "put", "key": "a", "value": 1, "ttl": 0}]}, 422, "invalid_ttl"),
    ],
)
def test_a_refused_txn_writes_nothing(kv: KV, body: dict[str, Any], status: int, code: str) -> None:
    kv.put("text", "abc")
    before = _state(kv)
    r = kv.call("POST", "/txn", body)
    assert (r.status_code, r.json()["code"]) == (status, code), r.content
    assert _state(kv) == before


def test_incr_counts_from_zero_keeps_the_expiry_and_refuses_non_numbers(kv: KV) -> None:
    r = kv.call("POST", "/keys/hits/incr", {})
    assert (r.status_code, r.json(), r["X-Revision"]) == (
        200,
        {"key": "hits", "value": 1, "version": 1, "revision": 1},
        "1",
    )
    assert kv.call("POST", "/keys/hits/incr", {"by": -5, "ttl": 60}).json()["value"] == -4
    ttl_before = kv.get("hits").json()["expires_at"]
    assert kv.call("POST", "/keys/hits/incr", {"by": 2}).json()["value"] == -2
    assert kv.get("hits").json()["expires_at"] == ttl_before
    kv.put("name", "ada")
    before = _state(kv)
    for body, status, code in (
        ({}, 409, "not_a_number"),  # the value is a text: the state, not the request, is wrong
        ({"by": "x"}, 422, "invalid_type"),
        ({"by": 1.5}, 422, "invalid_type"),
    ):
        r = kv.call("POST", "/keys/name/incr", body)
        assert r.json()["code"] == code
        assert (r.status_code, r.json()["code"]) == (status, code)
        assert _state(kv) == before
    kv.put("big", 2**63 - 1)
    before = _state(kv)
    r = kv.call("POST", "/keys/big/incr", {})
    assert (r.status_code, r.json()["code"]) == (409, "counter_overflow")
    assert _state(kv) == before


@pytest.mark.postgres
def test_32_clients_times_100_increments_is_exactly_3200(kv: KV) -> None:
    """Real threads on PostgreSQL, no retry loop: every increment counts, each under its own revision."""
    revisions: list[int] = []

    def client() -> None:
        for _ in range(100):
            revisions.append(services.entry_incr(tenant_id=kv.tenant.pk, key="counter")["revision"])

    assert _run_threads([functools.partial(client) for _ in range(32)]) == []
    assert kv.get("counter").json()["value"] == 3200
    assert sorted(revisions) == list(range(1, 3201))
    assert Change.objects.filter(key="counter").count() == 3200
