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
