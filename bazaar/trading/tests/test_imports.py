from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from bazaar.core.errors import PayloadTooLarge, ValidationFailed
from bazaar.trading.checks import invariants
from bazaar.trading.models import OfferState, OwnershipChange, Pokemon, Trainer
from bazaar.trading.services import import_csv, offer_create
from bazaar.trading.services.imports import ImportRejected, parse_date
from bazaar.trading.tests.conftest import owners, snapshot

SAMPLES = Path(__file__).resolve().parents[3] / "docs" / "samples"


def run(text: str | bytes, **kw: Any) -> Any:
    data = text.encode() if isinstance(text, str) else text
    return import_csv(source=io.BytesIO(data), **kw)


def test_parse_date_formats() -> None:
    assert str(parse_date("22-05-1987")) == "1987-05-22"
    assert str(parse_date("1987-05-22")) == "1987-05-22"
    assert parse_date("31-02-2020") is None
    assert parse_date("05/22/1987") is None


def test_samples_import_and_reimport_is_update(db: Any) -> None:
    r = import_csv(source=io.BytesIO((SAMPLES / "trading-trainers.csv").read_bytes()))
    assert (r.kind, r.rows, r.created, r.updated) == ("trainers", 5, 5, 0)
    assert Trainer.objects.get(public_id="tr0001").date_of_birth.isoformat() == "1987-05-22"
    r = import_csv(source=io.BytesIO((SAMPLES / "trading-pokemon.csv").read_bytes()))
    assert (r.kind, r.rows, r.created, r.updated, r.history_rows) == ("pokemon", 5, 5, 0, 5)
    assert owners()["pk10002"] == "tr0101"
    r = import_csv(source=io.BytesIO((SAMPLES / "trading-pokemon.csv").read_bytes()))
    assert (r.created, r.updated, r.history_rows) == (0, 5, 0)
    assert OwnershipChange.objects.filter(cause="import").count() == 5
    assert invariants()["violations"] == 0


def test_headers_case_insensitive_any_order_bom_and_crlf(db: Any) -> None:
    r = run(b"\xef\xbb\xbfLASTNAME,ID,DateOfBirth,FIRSTNAME\r\nK,tr9,1990-01-02,Ash\r\n")
    assert (r.created, r.kind) == (1, "trainers")
    t = Trainer.objects.get(public_id="tr9")
    assert (t.first_name, t.last_name) == ("Ash", "K")


def test_upsert_updates_owner_and_writes_history(world: Any) -> None:
    offer = offer_create(proposer="tr1", receiver="tr2", give=["pk1"], ask=[])
    r = run(
        "id,nickname,species,level,owner,dateOfOwnership\npk1,Renamed,Pikachu,50,tr3,01-01-2024\npk9,New,Eevee,3,tr1,02-01-2024\n"
    )
    assert (r.created, r.updated, r.history_rows) == (1, 1, 2)
    p = Pokemon.objects.get(public_id="pk1")
    assert (p.nickname, p.level, p.owner.public_id, p.date_of_ownership.isoformat()) == (
        "Renamed",
        50,
        "tr3",
        "2024-01-01",
    )
    last = OwnershipChange.objects.filter(pokemon=p).order_by("-id")[0]
    assert (last.cause, last.from_trainer_id, last.to_trainer_id) == (
        "import",
        Trainer.objects.get(public_id="tr1").pk,
        Trainer.objects.get(public_id="tr3").pk,
    )
    offer.refresh_from_db()
    assert offer.state == OfferState.INVALID
    assert invariants()["violations"] == 0


def test_invalid_rows_write_nothing_and_are_listed(world: Any) -> None:
    before = snapshot()
    text = (
        "id,nickname,species,level,owner,dateOfOwnership\n"
        "pk1,Ok,Pikachu,50,tr3,01-01-2024\n"  # line 2 fine (update)
        "pk8,Bad,Onix,101,tr1,01-01-2024\n"  # line 3 level
        "pk9,Bad,Onix,5,ghost,01-01-2024\n"  # line 4 owner
        "pk1,Dup,Onix,5,tr1,2024-13-01\n"  # line 5 date + duplicate
        "pk10,Short,Onix\n"  # line 6 fields
    )
    with pytest.raises(ImportRejected) as exc:
        run(text)
    assert exc.value.status == 422
    assert exc.value.code == "import_invalid"
    errs = exc.value.details["errors"]
    assert exc.value.details["error_count"] == 4
    assert [(e["row"], e["column"]) for e in errs] == [
        (3, "level"),
        (4, "owner"),
        (5, "dateOfOwnership"),
        (6, "*"),
    ]
    assert snapshot() == before


def test_duplicate_ids_reported_with_row(world: Any) -> None:
    before = snapshot()
    with pytest.raises(ImportRejected) as exc:
        run("id,firstName,lastName,dateOfBirth\ntrA,a,b,01-01-2000\ntrB,a,b,01-01-2000\ntrA,c,d,01-01-2000\n")
    assert exc.value.details["errors"] == [
        {"row": 4, "column": "id", "message": "duplicate id 'trA' (already earlier in the file)"}
    ]
    assert snapshot() == before


def test_error_list_is_capped_but_counted(db: Any) -> None:
    lines = ["id,firstName,lastName,dateOfBirth"] + [f"t{i},a,b,notadate" for i in range(250)]
    with pytest.raises(ImportRejected) as exc:
        run("\n".join(lines))
    assert exc.value.details["error_count"] == 250
    assert len(exc.value.details["errors"]) == 100
    assert exc.value.details["errors"][0]["row"] == 2
    assert Trainer.objects.count() == 0


def test_dry_run_counts_and_writes_nothing(world: Any) -> None:
    before = snapshot()
    r = run(
        "id,nickname,species,level,owner,dateOfOwnership\npk1,X,Y,5,tr2,01-01-2024\npk77,X,Y,5,tr2,01-01-2024\n",
        dry_run=True,
    )
    assert (r.dry_run, r.created, r.updated) == (True, 1, 1)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"id,firstName,lastName,dateOfBirth\n", "empty_file"),
        (b"name,age\nbob,3\n", "wrong_columns"),
        (b"id,firstName,lastName,dateOfBirth\ntr1,\xff\xfe,b,01-01-2000\n", "invalid_encoding"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not_csv"),
        (b"id,firstName,lastName,dateOfBirth\ntr1,a\x00b,c,01-01-2000\n", "not_csv"),
    ],
)
def test_bad_files(db: Any, data: bytes, code: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        run(data)
    assert exc.value.code == code
    assert Trainer.objects.count() == 0


def test_wrong_columns_for_declared_kind(db: Any) -> None:
    with pytest.raises(ValidationFailed) as exc:
        run("id,firstName,lastName,dateOfBirth\ntr1,a,b,01-01-2000\n", kind="pokemon")
    assert exc.value.code == "wrong_columns"


def test_size_limit(db: Any) -> None:
    data = "id,firstName,lastName,dateOfBirth\n" + "".join(f"t{i},a,b,01-01-2000\n" for i in range(2000))
    with pytest.raises(PayloadTooLarge) as exc:
        run(data, max_bytes=10_000)
    assert exc.value.status == 413
    assert exc.value.code == "import_too_large"
    assert Trainer.objects.count() == 0


def test_many_rows_batches(db: Any) -> None:
    rows = "".join(f"t{i},a,b,01-01-2000\n" for i in range(12_345))
    r = run("id,firstName,lastName,dateOfBirth\n" + rows)
    assert r.created == 12_345 == Trainer.objects.count()
