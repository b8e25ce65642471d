"""`bazaar kvadmin …` (database-direct staff commands): get/set/delete/list/export/import, keys and tenants."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from bazaar.core.testing import FrozenClock
from bazaar.kvstore.models import Entry, TenantApiKey

pytestmark = pytest.mark.django_db(transaction=True)


def kv(*args: str) -> str:
    out = StringIO()
    call_command("kvadmin", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_cli_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FrozenClock(monkeypatch)
    assert "created tenant acme" in kv("tenants", "create", "acme")
    assert kv("tenants", "list").startswith("acme")
    assert "version 1" in kv("set", "greeting", "hello world", "--tenant", "acme")
    assert "version 1" in kv("set", "cfg", '{"a": 1}', "--tenant", "acme", "--ttl", "60")
    assert json.loads(kv("get", "greeting", "--tenant", "acme")) == "hello world"
    assert json.loads(kv("get", "cfg", "--tenant", "acme")) == {"a": 1}
    assert json.loads(kv("get", "cfg", "--tenant", "acme", "--full"))["ttl"] == 60
    assert "version 2" in kv("set", "greeting", "hi", "--tenant", "acme", "--if-version", "1")
    with pytest.raises(CommandError, match="version_conflict"):
        kv("set", "greeting", "late", "--tenant", "acme", "--if-version", "1")
    listing = kv("list", "--tenant", "acme")
    assert [line.split("\t")[0] for line in listing.splitlines()] == ["cfg", "greeting"]
    out = tmp_path / "export.jsonl"
    kv("export", str(out), "--tenant", "acme")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["key"] for x in lines] == ["cfg", "greeting"]
    kv("tenants", "create", "copy")
    assert "imported 2 entries" in kv("import", str(out), "--tenant", "copy")
    assert json.loads(kv("get", "greeting", "--tenant", "copy")) == "hi"
    assert "deleted greeting" in kv("delete", "greeting", "--tenant", "acme")
    with pytest.raises(CommandError, match="key_not_found"):
        kv("get", "greeting", "--tenant", "acme")
    with pytest.raises(CommandError, match="tenant_not_found"):
        kv("get", "x", "--tenant", "nope")


def test_cli_import_is_all_or_nothing(tmp_path: Path) -> None:
    kv("tenants", "create", "acme")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "a", "value": 1}\n{"key": "b", "value": 2}\n{"key": "", "value": 3}\n')
    with pytest.raises(CommandError, match="nothing was imported"):
        kv("import", str(bad), "--tenant", "acme")
    bad.write_text('{"key": "a", "value": 1}\nnot json\n')
    with pytest.raises(CommandError, match="line 2"):
        kv("import", str(bad), "--tenant", "acme")
    assert not Entry.objects.exists()


def test_cli_keys(capsys: Any) -> None:
    kv("tenants", "create", "acme")
    out = kv("keys", "create", "--tenant", "acme", "--name", "deploy")
    secret = out.strip().split()[-1]
    assert secret.startswith("kv_")
    key = TenantApiKey.objects.get()
    assert key.digest != secret
    assert "active" in kv("keys", "list", "--tenant", "acme")
    assert "revoked" in kv("keys", "revoke", str(key.pk), "--tenant", "acme")
    assert "revoked" in kv("keys", "list", "--tenant", "acme")
