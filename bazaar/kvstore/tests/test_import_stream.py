"""The KV import is streamed: the request body is read in chunks and split into lines here, the records are
staged in the database, and the all-or-nothing rules hold as before (bench/kv_import_memory.py measures the
memory of a 100 MB import)."""

from __future__ import annotations

import io

import pytest

from bazaar.core.errors import ValidationFailed
from bazaar.kvstore.api import _lines, _records


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 16])
def test_lines_are_split_across_any_chunk_boundary(chunk: int) -> None:
    body = b'{"key": "a", "value": 1}\n\n{"key": "b", "value": "x\\ny"}\r\n{"key": "c", "value": []}'
    assert list(_lines(io.BytesIO(body), chunk)) == [
        b'{"key": "a", "value": 1}',
        b"",
        b'{"key": "b", "value": "x\\ny"}\r',
        b'{"key": "c", "value": []}',
    ]


def test_records_skip_blank_lines_and_name_the_bad_one() -> None:
    body = b'{"key": "a", "value": 1}\n\n{"key": "b", "value": 2}\n'
    assert list(_records(io.BytesIO(body))) == [{"key": "a", "value": 1}, {"key": "b", "value": 2}]
    with pytest.raises(ValidationFailed) as exc:
        list(_records(io.BytesIO(b'{"key": "a", "value": 1}\n\xff\n')))
    assert (exc.value.code, exc.value.details) == ("invalid_encoding", {"line": 2, "byte": 0})
    with pytest.raises(ValidationFailed) as exc:
        list(_records(io.BytesIO(b"\n[1,\n")))
    assert (exc.value.code, exc.value.details) == ("invalid_record", {"line": 2})


@pytest.mark.django_db
def test_a_large_import_in_key_order_with_a_late_duplicate_writes_nothing() -> None:
    from bazaar.kvstore.models import Entry, Tenant
    from bazaar.kvstore.services import entries_import

    tenant = Tenant.objects.create(slug="stream")
    records = [{"key": f"k{i:05d}", "value": i} for i in range(2500, 0, -1)]  # > one staging page, reversed
    assert entries_import(tenant_id=tenant.pk, records=iter(records)) == 2500
    assert list(Entry.objects.filter(tenant=tenant).order_by("pk").values_list("key", flat=True)[:3]) == [
        "k00001",
        "k00002",
        "k00003",
    ]
    again = ({"key": f"n{i}", "value": i} for i in range(3000))
    late = iter([*again, {"key": "n7", "value": 0}])
    with pytest.raises(ValidationFailed) as exc:
        entries_import(tenant_id=tenant.pk, records=late)
    assert (exc.value.code, exc.value.details) == (
        "duplicate_key",
        {"key": "n7", "line": 3001, "first_line": 8},
    )
    assert Entry.objects.filter(tenant=tenant).count() == 2500


@pytest.mark.django_db
@pytest.mark.parametrize("existing", [False, True])
def test_a_repeated_key_is_named_whether_or_not_it_exists(existing: bool) -> None:
    """The repeat is found by the write itself on PostgreSQL: a plain INSERT's unique index when no staged key
    exists yet, ON CONFLICT meeting its own row twice when some do. Either way: named, nothing written."""
    from bazaar.kvstore.models import Change, Entry, Tenant
    from bazaar.kvstore.services import entries_import

    tenant = Tenant.objects.create(slug=f"dup-{existing}")
    if existing:
        entries_import(
            tenant_id=tenant.pk, records=iter([{"key": "a", "value": 0}, {"key": "b", "value": 0}])
        )
    before = (
        list(Entry.objects.filter(tenant=tenant).values_list("key", "value", "version")),
        Change.objects.filter(tenant=tenant).count(),
        Tenant.objects.get(pk=tenant.pk).revision,
    )
    records = [{"key": k, "value": 1} for k in ["z", "a", "y", "b", "a"]]
    with pytest.raises(ValidationFailed) as exc:
        entries_import(tenant_id=tenant.pk, records=iter(records))
    assert (exc.value.code, exc.value.details) == ("duplicate_key", {"key": "a", "line": 5, "first_line": 2})
    after = (
        list(Entry.objects.filter(tenant=tenant).values_list("key", "value", "version")),
        Change.objects.filter(tenant=tenant).count(),
        Tenant.objects.get(pk=tenant.pk).revision,
    )
    assert after == before


@pytest.mark.django_db
def test_the_first_repeat_named_is_the_one_whose_second_line_comes_first() -> None:
    from bazaar.kvstore.models import Entry, Tenant
    from bazaar.kvstore.services import entries_import

    tenant = Tenant.objects.create(slug="repeats")
    # c repeats at lines 1, 5 and 6; d at lines 2 and 4: d's repeat (line 4) is met first.
    keys = ["c", "d", "e", "d", "c", "c"]
    with pytest.raises(ValidationFailed) as exc:
        entries_import(tenant_id=tenant.pk, records=iter({"key": k, "value": 1} for k in keys))
    assert (exc.value.code, exc.value.details) == ("duplicate_key", {"key": "d", "line": 4, "first_line": 2})
    assert not Entry.objects.filter(tenant=tenant).exists()


@pytest.mark.django_db
def test_an_import_of_new_keys_and_one_over_existing_keys_write_the_same_rows() -> None:
    """PostgreSQL writes an import whose keys are all new with a plain INSERT and one that meets existing keys
    with the upsert; both give version floor + 1 to a new key and one change row per key, in key order."""
    from bazaar.kvstore.models import Change, Entry, Tenant
    from bazaar.kvstore.services import entries_import

    tenant = Tenant.objects.create(slug="paths")
    assert entries_import(tenant_id=tenant.pk, records=iter({"key": k, "value": k} for k in "bca")) == 3
    assert entries_import(tenant_id=tenant.pk, records=iter({"key": k, "value": 2} for k in "dab")) == 3
    entries = Entry.objects.filter(tenant=tenant).order_by("key")
    assert [(e.key, e.value, e.version, e.mod_revision) for e in entries] == [
        ("a", "2", 2, 2),
        ("b", "2", 2, 2),
        ("c", '"c"', 1, 1),
        ("d", "2", 1, 2),
    ]
    changes = Change.objects.filter(tenant=tenant).order_by("revision", "id")
    assert [(c.revision, c.key, c.version) for c in changes] == [
        (1, "a", 1),
        (1, "b", 1),
        (1, "c", 1),
        (2, "a", 2),
        (2, "b", 2),
        (2, "d", 1),
    ]


@pytest.mark.parametrize("char", ["\x00", "\x1f", "\x7f", "\x85", "\x9f"])
def test_every_control_character_is_refused_in_a_key(char: str) -> None:
    from bazaar.kvstore.services.validation import clean_key

    assert clean_key("a\xa0b\u2028c") == "a\xa0b\u2028c"  # not category Cc
    with pytest.raises(ValidationFailed) as exc:
        clean_key(f"a{char}b")
    assert exc.value.code == "invalid_key"
