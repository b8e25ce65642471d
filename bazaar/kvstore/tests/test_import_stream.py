"""The KV import is streamed: the request body is read in chunks and split into lines here, the records are
staged in the database, and the all-or-nothing rules hold as before (bench/kv_import_memory.py measures the
memory of a 100 MB import)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

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


# --- PostgreSQL parses a block while it writes the one before: the rules hold across blocks ---------------------


def _state(tenant_id: int) -> tuple[list[tuple[str, str, int]], int, int]:
    from bazaar.kvstore.models import Change, Entry, Tenant

    return (
        list(
            Entry.objects.filter(tenant_id=tenant_id).order_by("key").values_list("key", "value", "version")
        ),
        Change.objects.filter(tenant_id=tenant_id).count(),
        Tenant.objects.get(pk=tenant_id).revision,
    )


def _parsers_alive() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "kv-import-parse"]


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    from bazaar.kvstore.services import imports

    monkeypatch.setattr(imports, "BLOCK", 2)


@pytest.mark.django_db
@pytest.mark.usefixtures("small_blocks")
def test_blocks_write_every_record_once_with_progress_per_block() -> None:
    from bazaar.kvstore.models import Change, Tenant
    from bazaar.kvstore.services import entries_import

    tenant = Tenant.objects.create(slug="blocks")
    seen: list[int] = []
    records = iter({"key": k, "value": i} for i, k in enumerate("edcba"))
    assert entries_import(tenant_id=tenant.pk, records=records, progress=seen.append) == 5
    entries, changes, revision = _state(tenant.pk)
    assert entries == [("a", "4", 1), ("b", "3", 1), ("c", "2", 1), ("d", "1", 1), ("e", "0", 1)]
    assert (changes, revision) == (5, 1)
    assert set(Change.objects.filter(tenant=tenant).values_list("revision", flat=True)) == {1}
    if connection.vendor == "postgresql":
        assert seen == [2, 4, 5]  # one call per block
    else:
        assert seen == [1, 2, 3, 4, 5]
    assert _parsers_alive() == []


@pytest.mark.django_db
@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("existing", [False, True])
def test_a_key_repeated_in_a_later_block_is_named_and_nothing_is_written(existing: bool) -> None:
    """A new tenant's blocks are plain INSERTs (the unique index refuses the repeat); a block meeting existing
    keys is an upsert, which leaves a row the import already wrote alone and comes back short: named either way."""
    from bazaar.kvstore.models import Tenant
    from bazaar.kvstore.services import entries_import

    tenant = Tenant.objects.create(slug=f"later-{existing}")
    if existing:
        entries_import(
            tenant_id=tenant.pk, records=iter([{"key": "a", "value": 0}, {"key": "y", "value": 0}])
        )
    before = _state(tenant.pk)
    records = [{"key": k, "value": 1} for k in ["a", "b", "c", "y", "d", "a", "e"]]
    with pytest.raises(ValidationFailed) as exc:
        entries_import(tenant_id=tenant.pk, records=iter(records))
    assert (exc.value.code, exc.value.details) == ("duplicate_key", {"key": "a", "line": 6, "first_line": 1})
    assert _state(tenant.pk) == before
    assert _parsers_alive() == []


@pytest.mark.django_db
@pytest.mark.usefixtures("small_blocks")
def test_a_bad_record_after_blocks_were_written_writes_nothing() -> None:
    from bazaar.kvstore.models import Tenant
    from bazaar.kvstore.services import entries_import

    tenant = Tenant.objects.create(slug="late-bad")
    entries_import(tenant_id=tenant.pk, records=iter([{"key": "kept", "value": 0}]))
    before = _state(tenant.pk)
    records = [*({"key": f"k{i}", "value": i} for i in range(7)), {"key": "", "value": 1}]
    with pytest.raises(ValidationFailed) as exc:
        entries_import(tenant_id=tenant.pk, records=iter(records))
    assert (exc.value.code, exc.value.details) == ("invalid_key", {"line": 8})
    assert _state(tenant.pk) == before
    assert _parsers_alive() == []


@pytest.mark.django_db
@pytest.mark.usefixtures("small_blocks")
def test_the_earliest_problem_by_line_is_the_one_named() -> None:
    """A repeat in the lines before a bad record is named, not the bad record after it (PostgreSQL writes the
    lines before the bad record first); on SQLite every record is validated before the stage is searched."""
    from bazaar.kvstore.models import Tenant
    from bazaar.kvstore.services import entries_import

    tenant = Tenant.objects.create(slug="earliest")
    records: list[dict[str, Any]] = [
        {"key": "a", "value": 1},
        {"key": "b", "value": 1},
        {"key": "a", "value": 1},
    ]
    records.append({"value": 1})
    with pytest.raises(ValidationFailed) as exc:
        entries_import(tenant_id=tenant.pk, records=iter(records))
    if connection.vendor == "postgresql":
        assert (exc.value.code, exc.value.details) == (
            "duplicate_key",
            {"key": "a", "line": 3, "first_line": 1},
        )
    else:
        assert (exc.value.code, exc.value.details) == ("invalid_record", {"line": 4})
    assert _state(tenant.pk) == ([], 0, 0)
    bad_first: list[dict[str, Any]] = [{"key": "a", "value": 1}, {"value": 1}, {"key": "a", "value": 1}]
    with pytest.raises(ValidationFailed) as exc:
        entries_import(tenant_id=tenant.pk, records=iter(bad_first))
    assert (exc.value.code, exc.value.details) == ("invalid_record", {"line": 2})
    assert _state(tenant.pk) == ([], 0, 0)


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.usefixtures("small_blocks")
def test_a_database_error_stops_the_parsing_thread() -> None:
    """The tenant deleted under the import: the importing thread fails on its first block, and the parser, which
    had a million records left to parse and a full hand-over queue, stops instead of running on."""
    from bazaar.core.errors import NotFound
    from bazaar.kvstore.services import entries_import

    pulled = 0

    def endless() -> Iterator[dict[str, object]]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield {"key": f"k{i}", "value": i}

    with pytest.raises(NotFound):
        entries_import(tenant_id=2**31 - 1, records=endless())
    assert _parsers_alive() == []
    assert pulled < 1_000_000


def test_the_body_is_spooled_whole_and_to_disk_beyond_the_memory_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bazaar.kvstore import api

    monkeypatch.setattr(api, "SPOOL_IN_MEMORY", 1000)
    body = b"".join(b'{"key": "k%d", "value": %d}\n' % (i, i) for i in range(500))
    with api._spooled(io.BytesIO(body), chunk=333) as spool:
        assert spool._rolled  # type: ignore[attr-defined]  # on disk
        assert spool.read() == body
    small = b"".join(body.splitlines(keepends=True)[:30])
    with api._spooled(io.BytesIO(small)) as spool:
        assert not spool._rolled  # type: ignore[attr-defined]  # in memory
        assert [r["key"] for r in _records(spool)] == [f"k{i}" for i in range(30)]


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_block_also_ends_at_its_size_in_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large values end a block before its count of records: the blocks alive at once stay small in memory."""
    from bazaar.kvstore.models import Tenant
    from bazaar.kvstore.services import entries_import, imports

    monkeypatch.setattr(imports, "BLOCK_CHARS", 2500)
    tenant = Tenant.objects.create(slug="wide")
    seen: list[int] = []
    records = iter({"key": f"k{i}", "value": "x" * 1000} for i in range(5))
    assert entries_import(tenant_id=tenant.pk, records=records, progress=seen.append) == 5
    assert seen == [3, 5]  # 3 lines of ~1,010 characters pass 2,500; the last block holds the rest
