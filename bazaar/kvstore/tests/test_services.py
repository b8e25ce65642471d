"""Entry services: versions, CAS, TTL, delete/re-create, batches, imports and the purge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from bazaar.core.errors import Conflict, NotFound, PayloadTooLarge, ValidationFailed
from bazaar.kvstore import selectors, services
from bazaar.kvstore.models import Entry, Tenant
from bazaar.kvstore.services.entries import _CAS, _DELETE, _UPSERT

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tenant() -> Tenant:
    return services.tenant_create(slug="acme")


def _value(tenant: Tenant, key: str) -> Any:
    import json

    return json.loads(selectors.entry_get(tenant_id=tenant.pk, key=key).body)


def test_sql_names_the_model_tables() -> None:
    assert Entry._meta.db_table == "kvstore_entry"
    assert Tenant._meta.db_table == "kvstore_tenant"
    assert all(
        '"kvstore_entry"' in sql for sql in (_UPSERT, _CAS, _DELETE)
    )  # quoted, from the model (sql.table)


def test_every_write_raises_the_version(tenant: Tenant) -> None:
    assert services.entry_set(tenant_id=tenant.pk, key="a", value=1).version == 1
    assert services.entry_set(tenant_id=tenant.pk, key="a", value={"x": [1, "two"]}).version == 2
    got = _value(tenant, "a")
    assert got["value"] == {"x": [1, "two"]}
    assert got["version"] == 2
    assert got["ttl"] is None
    assert got["expires_at"] is None


def test_text_and_unicode_values_and_keys(tenant: Tenant) -> None:
    services.entry_set(tenant_id=tenant.pk, key="grüße/ключ", value="plain text ✓")
    assert _value(tenant, "grüße/ключ")["value"] == "plain text ✓"


def test_cas_matches_and_conflicts_with_the_current_version(tenant: Tenant) -> None:
    services.entry_set(tenant_id=tenant.pk, key="c", value=1)
    assert services.entry_set(tenant_id=tenant.pk, key="c", value=2, if_version=1).version == 2
    with pytest.raises(Conflict) as exc:
        services.entry_set(tenant_id=tenant.pk, key="c", value=3, if_version=1)
    assert exc.value.code == "version_conflict"
    assert exc.value.details["current_version"] == 2
    assert _value(tenant, "c")["value"] == 2  # nothing written


def test_if_version_zero_creates_only(tenant: Tenant) -> None:
    assert services.entry_set(tenant_id=tenant.pk, key="n", value="first", if_version=0).version == 1
    with pytest.raises(Conflict) as exc:
        services.entry_set(tenant_id=tenant.pk, key="n", value="second", if_version=0)
    assert exc.value.details["current_version"] == 1
    assert _value(tenant, "n")["value"] == "first"


def test_cas_on_a_missing_key_conflicts_with_version_zero(tenant: Tenant) -> None:
    with pytest.raises(Conflict) as exc:
        services.entry_set(tenant_id=tenant.pk, key="ghost", value=1, if_version=3)
    assert exc.value.details["current_version"] == 0
    assert not Entry.objects.exists()


def test_delete_then_recreate_never_reuses_a_version(tenant: Tenant) -> None:
    services.entry_set(tenant_id=tenant.pk, key="k", value=1)
    services.entry_set(tenant_id=tenant.pk, key="k", value=2)
    assert services.entry_delete(tenant_id=tenant.pk, key="k").version == 3
    with pytest.raises(NotFound):
        selectors.entry_get(tenant_id=tenant.pk, key="k")
    with pytest.raises(NotFound) as nf:
        services.entry_delete(tenant_id=tenant.pk, key="k")
    assert nf.value.code == "key_not_found"
    # create-only succeeds on a deleted key, and the version continues above the old ones
    assert services.entry_set(tenant_id=tenant.pk, key="k", value="again", if_version=0).version == 4
    # after a purge the tenant floor keeps new versions above every purged one
    services.entry_delete(tenant_id=tenant.pk, key="k")
    assert services.entries_purge_expired(now=timezone.now() + timedelta(seconds=1)) == 1
    assert Tenant.objects.get(pk=tenant.pk).version_floor == 5
    assert services.entry_set(tenant_id=tenant.pk, key="k", value="third life").version == 6
    assert services.entry_set(tenant_id=tenant.pk, key="fresh", value=1).version == 6


def test_delete_if_version(tenant: Tenant) -> None:
    services.entry_set(tenant_id=tenant.pk, key="d", value=1)
    with pytest.raises(Conflict) as exc:
        services.entry_delete(tenant_id=tenant.pk, key="d", if_version=7)
    assert exc.value.details["current_version"] == 1
    assert _value(tenant, "d")["version"] == 1
    services.entry_delete(tenant_id=tenant.pk, key="d", if_version=1)
    with pytest.raises(ValidationFailed):
        services.entry_delete(tenant_id=tenant.pk, key="d", if_version=0)


def test_expired_entries_are_invisible_at_once_even_when_cached(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = timezone.now()
    services.entry_set(tenant_id=tenant.pk, key="t", value="short", ttl=10)
    first = _value(tenant, "t")
    assert first["ttl"] == 10
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=4.5))
    assert _value(tenant, "t")["ttl"] == 6  # cached bytes, TTL left still exact
    assert selectors.entry_get(tenant_id=tenant.pk, key="t").hit is True
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=10.01))
    with pytest.raises(NotFound):
        selectors.entry_get(tenant_id=tenant.pk, key="t")
    assert b'"t"' not in selectors.entry_list(tenant_id=tenant.pk)
    # an expired key can be created again (create-only) and continues its versions
    assert services.entry_set(tenant_id=tenant.pk, key="t", value="new", if_version=0).version == 2


def test_purge_removes_only_dead_rows(tenant: Tenant) -> None:
    services.entry_set(tenant_id=tenant.pk, key="live", value=1)
    services.entry_set(tenant_id=tenant.pk, key="ttl", value=1, ttl=5)
    services.entry_set(tenant_id=tenant.pk, key="gone", value=1)
    services.entry_delete(tenant_id=tenant.pk, key="gone")
    assert services.entries_purge_expired() == 1
    assert services.entries_purge_expired(now=timezone.now() + timedelta(seconds=6), batch=1) == 1
    assert sorted(Entry.objects.values_list("key", flat=True)) == ["live"]


@pytest.mark.parametrize(
    ("key", "code"),
    [("", "invalid_key"), ("a\nb", "invalid_key"), ("x" * 257, "invalid_key"), ("tab\there", "invalid_key")],
)
def test_bad_keys_write_nothing(tenant: Tenant, key: str, code: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.entry_set(tenant_id=tenant.pk, key=key, value=1)
    assert exc.value.code == code
    assert not Entry.objects.exists()


def test_value_over_the_limit_is_413_and_writes_nothing(tenant: Tenant, settings: Any) -> None:
    settings.KVSTORE_MAX_VALUE_BYTES = 100
    services.entry_set(tenant_id=tenant.pk, key="v", value="x" * 98)  # 100 bytes with the quotes
    with pytest.raises(PayloadTooLarge) as exc:
        services.entry_set(tenant_id=tenant.pk, key="v", value="x" * 99)
    assert exc.value.code == "value_too_large"
    assert exc.value.details == {"limit": 100, "size": 101}
    assert Entry.objects.get().version == 1


@pytest.mark.parametrize("ttl", [0, -1, 10**9, True, "5"])
def test_bad_ttl(tenant: Tenant, ttl: Any) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.entry_set(tenant_id=tenant.pk, key="k", value=1, ttl=ttl)
    assert exc.value.code == "invalid_ttl"
    assert not Entry.objects.exists()


def test_nan_is_not_json(tenant: Tenant) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.entry_set(tenant_id=tenant.pk, key="k", value=float("nan"))
    assert exc.value.code == "invalid_value"


def _ops(*spec: tuple[str, str, Any]) -> list[Any]:
    now = timezone.now()
    return [
        services.make_set(k, v, None, None, now) if op == "set" else services.make_delete(k, v)
        for op, k, v in spec
    ]


def test_batch_applies_everything(tenant: Tenant) -> None:
    services.entry_set(tenant_id=tenant.pk, key="b", value="old")
    results = services.batch_apply(
        tenant_id=tenant.pk,
        ops=_ops(("set", "z", 1), ("delete", "b", None), ("set", "a", 2)),
        now=timezone.now(),
    )
    assert [(r.op, r.key, r.version) for r in results] == [
        ("set", "z", 1),
        ("delete", "b", 2),
        ("set", "a", 1),
    ]
    assert _value(tenant, "a")["value"] == 2
    with pytest.raises(NotFound):
        selectors.entry_get(tenant_id=tenant.pk, key="b")


def test_batch_is_all_or_nothing(tenant: Tenant) -> None:
    services.entry_set(tenant_id=tenant.pk, key="keep", value="old")
    now = timezone.now()
    ops = [services.make_set("a-new", 1, None, None, now), services.make_set("keep", "new", None, 5, now)]
    with pytest.raises(Conflict) as exc:
        services.batch_apply(tenant_id=tenant.pk, ops=ops, now=now)
    assert exc.value.details["index"] == 1
    assert exc.value.details["current_version"] == 1
    assert list(Entry.objects.values_list("key", "version")) == [("keep", 1)]
    with pytest.raises(NotFound) as nf:
        services.batch_apply(
            tenant_id=tenant.pk, ops=_ops(("set", "x", 1), ("delete", "nope", None)), now=now
        )
    assert nf.value.details == {"key": "nope", "index": 1}
    assert not Entry.objects.filter(key="x").exists()


def test_batch_rejects_duplicates_and_empty(tenant: Tenant) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.batch_apply(
            tenant_id=tenant.pk, ops=_ops(("set", "a", 1), ("delete", "a", None)), now=timezone.now()
        )
    assert exc.value.code == "duplicate_key"
    with pytest.raises(ValidationFailed) as exc:
        services.batch_apply(tenant_id=tenant.pk, ops=[], now=timezone.now())
    assert exc.value.code == "empty_batch"
    assert not Entry.objects.exists()


def test_import_is_all_or_nothing(tenant: Tenant) -> None:
    good = [{"key": "a", "value": 1}, {"key": "b", "value": "two", "ttl": 60}]
    assert services.entries_import(tenant_id=tenant.pk, records=good) == 2
    bad = [{"key": "c", "value": 3}, {"key": "d\x00", "value": 4}]
    with pytest.raises(ValidationFailed) as exc:
        services.entries_import(tenant_id=tenant.pk, records=bad)
    assert exc.value.details["line"] == 2
    dup = [{"key": "c", "value": 3}, {"key": "c", "value": 4}]
    with pytest.raises(ValidationFailed) as exc:
        services.entries_import(tenant_id=tenant.pk, records=dup)
    assert exc.value.code == "duplicate_key"
    assert sorted(Entry.objects.values_list("key", flat=True)) == ["a", "b"]


def test_export_round_trips_through_import(tenant: Tenant) -> None:
    import json

    for i in range(5):
        services.entry_set(tenant_id=tenant.pk, key=f"k{i}", value={"i": i}, ttl=100 if i == 2 else None)
    lines = list(selectors.entries_export(tenant_id=tenant.pk, chunk=2))
    assert [json.loads(line)["key"] for line in lines] == ["k0", "k1", "k2", "k3", "k4"]
    assert json.loads(lines[2])["ttl"] == 100
    other = services.tenant_create(slug="copy")
    assert services.entries_import(tenant_id=other.pk, records=[json.loads(x) for x in lines]) == 5
    assert _value(other, "k3")["value"] == {"i": 3}


def test_listing_pages_by_cursor_in_key_order(tenant: Tenant) -> None:
    import json

    keys = ["app/a", "app/b", "app/c", "apq", "b", "app/\u00e9", "ap"]
    for k in keys:
        services.entry_set(tenant_id=tenant.pk, key=k, value=k)
    seen: list[str] = []
    cursor = None
    while True:
        page = json.loads(selectors.entry_list(tenant_id=tenant.pk, prefix="app/", limit=2, cursor=cursor))
        seen += [item["key"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["app/a", "app/b", "app/c", "app/\u00e9"]
    everything = json.loads(selectors.entry_list(tenant_id=tenant.pk, limit=100))
    assert [i["key"] for i in everything["items"]] == sorted(keys)
    with pytest.raises(ValidationFailed) as exc:
        selectors.entry_list(tenant_id=tenant.pk, cursor="!!!")
    assert exc.value.code == "invalid_cursor"
    with pytest.raises(ValidationFailed):
        selectors.entry_list(tenant_id=tenant.pk, limit=0)


def test_listing_uses_the_key_index_not_a_scan(tenant: Tenant) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN shape is PostgreSQL's")
    qs = Entry.objects.filter(tenant_id=tenant.pk, key__gt="a").order_by("key")[:10]
    plan = qs.explain()
    assert "kv_entry_tenant_key_uniq" in plan, plan
