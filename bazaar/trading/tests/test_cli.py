from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from bazaar.trading.demo import load
from bazaar.trading.models import OwnershipChange, Pokemon, TradeOffer, Trainer

SAMPLES = Path(__file__).resolve().parents[3] / "docs" / "samples"


def test_cli_import_and_dry_run(db: Any) -> None:
    out = StringIO()
    call_command("trading", "import", str(SAMPLES / "trading-trainers.csv"), "--no-progress", stdout=out)
    assert "trainers: 5 rows, created 5, updated 0" in out.getvalue()
    out = StringIO()
    call_command("trading", "import", str(SAMPLES / "trading-pokemon.csv"), "--dry-run", "--json", stdout=out)
    summary = json.loads(out.getvalue())
    assert (summary["ok"], summary["dry_run"], summary["created"]) == (True, True, 5)
    assert Pokemon.objects.count() == 0


def test_cli_import_refused(db: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,firstName,lastName,dateOfBirth\ntr1,a,b,99-99-2000\n")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("trading", "import", str(bad), "--no-progress", stderr=err)
    assert "row 2 dateOfBirth" in err.getvalue()
    assert Trainer.objects.count() == 0


def test_demo_is_idempotent_and_consistent(db: Any) -> None:
    lines = load()
    assert any("ash" in line for line in lines)
    counts = (
        Trainer.objects.count(),
        Pokemon.objects.count(),
        OwnershipChange.objects.count(),
        TradeOffer.objects.count(),
    )
    assert TradeOffer.objects.filter(state="open").count() == 3
    load()
    assert counts == (
        Trainer.objects.count(),
        Pokemon.objects.count(),
        OwnershipChange.objects.count(),
        TradeOffer.objects.count(),
    )
    out = StringIO()
    call_command("trading", "check", stdout=out)
    assert json.loads(out.getvalue())["violations"] == 0
