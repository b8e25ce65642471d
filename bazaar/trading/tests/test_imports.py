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


def test_dry_run_counts_ownership_changes_like_the_real_import(world: Any) -> None:
    """The bug of issue #15: a dry run said 0 ownership changes (and 0 history rows) for a file that moves pk1 and
    pk3 to other trainers; the real import then wrote them. Both now report the same numbers."""
    csv = (
        "id,nickname,species,level,owner,dateOfOwnership\n"
        "pk1,n1,Pikachu,10,tr2,01-01-2024\n"  # tr1 -> tr2
        "pk2,Renamed,Onix,20,tr1,01-01-2024\n"  # same owner, other values
        "pk3,n3,Pikachu,30,tr3,01-01-2024\n"  # tr2 -> tr3
        "pk8,New,Eevee,3,tr1,02-01-2024\n"  # new
    )
    before = snapshot()
    dry = run(csv, dry_run=True)
    assert (dry.created, dry.updated, dry.ownership_changes, dry.history_rows) == (1, 3, 2, 3)
    assert dry.as_dict()["ownership_changes"] == 2
    assert snapshot() == before
    real = run(csv)
    assert (real.created, real.updated, real.ownership_changes, real.history_rows) == (1, 3, 2, 3)
    assert owners()["pk1"] == "tr2"
    assert owners()["pk3"] == "tr3"


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


def test_fast_and_checked_rows_store_the_same_values(world: Any) -> None:
    """On PostgreSQL plain rows take the COPY fast path and odd ones the checked path; both must store exactly
    what the file says (stripped, escaped, dates in either format)."""
    long_name = "N" * 100
    text = (
        "id,nickname,species,level,owner,dateOfOwnership\n"
        "f1,Plain,Pikachu,7,tr1,02-03-2024\n"  # fast, DD-MM-YYYY
        "f2,Iso,Eevee,100,tr2,2024-03-02\n"  # fast, ISO
        '"f3","Mr, Mime",Mime,1,tr3,29-02-2024\n'  # fast: quotes and a comma are not special in COPY text
        f"f4,{long_name},Onix,55,tr1,01-01-2000\n"  # fast, 100 characters
        "f5,Pokémon ✨,Abra,9,tr1,01-01-2000\n"  # fast, non-ASCII
        "f6,  Spaced  ,Abra,007,tr2,01-01-2000\n"  # checked: whitespace, leading zeros
        '"f7","tab\there\\back\\\\slash",Abra,10,tr2,01-01-2000\n'  # checked: COPY specials escaped
        '"f8","line\nbreak",Abra,10,tr2,01-01-2000\n'  # checked: a quoted newline
    )
    r = run(text)
    assert (r.created, r.updated, r.history_rows) == (8, 0, 8)
    got = {
        p.public_id: (p.nickname, p.species, p.level, p.owner.public_id, p.date_of_ownership.isoformat())
        for p in Pokemon.objects.filter(public_id__startswith="f").select_related("owner")
    }
    assert got == {
        "f1": ("Plain", "Pikachu", 7, "tr1", "2024-03-02"),
        "f2": ("Iso", "Eevee", 100, "tr2", "2024-03-02"),
        "f3": ("Mr, Mime", "Mime", 1, "tr3", "2024-02-29"),
        "f4": (long_name, "Onix", 55, "tr1", "2000-01-01"),
        "f5": ("Pokémon ✨", "Abra", 9, "tr1", "2000-01-01"),
        "f6": ("Spaced", "Abra", 7, "tr2", "2000-01-01"),
        "f7": ("tab\there\\back\\\\slash", "Abra", 10, "tr2", "2000-01-01"),
        "f8": ("line\nbreak", "Abra", 10, "tr2", "2000-01-01"),
    }
    assert invariants()["violations"] == 0


def test_fast_shaped_but_invalid_values_are_reported(world: Any) -> None:
    before = snapshot()
    text = (
        "id,nickname,species,level,owner,dateOfOwnership\n"
        "g1,Ok,Pikachu,5,tr1,31-02-2020\n"  # the shape of a date, not a date
        f"g2,{'N' * 101},Pikachu,5,tr1,01-01-2020\n"  # 101 characters
        "g3,Ok,Pikachu,0,tr1,01-01-2020\n"  # level 0
        "g4,Ok,Pikachu,5,tr1,2020-02-30\n"
    )
    with pytest.raises(ImportRejected) as exc:
        run(text)
    assert [(e["row"], e["column"]) for e in exc.value.details["errors"]] == [
        (2, "dateOfOwnership"),
        (3, "nickname"),
        (4, "level"),
        (5, "dateOfOwnership"),
    ]
    assert snapshot() == before


def test_columns_in_any_order_take_the_same_path(world: Any) -> None:
    r = run("owner,dateOfOwnership,level,species,nickname,id\ntr2,05-06-2021,12,Onix,Rocky,o1\n")
    assert r.created == 1
    p = Pokemon.objects.get(public_id="o1")
    assert (p.nickname, p.species, p.level, p.owner.public_id, p.date_of_ownership.isoformat()) == (
        "Rocky",
        "Onix",
        12,
        "tr2",
        "2021-06-05",
    )


def test_reimport_rewrites_only_changed_rows(world: Any) -> None:
    header = "id,nickname,species,level,owner,dateOfOwnership\n"
    run(header + "u1,A,Eevee,5,tr1,01-01-2024\nu2,B,Eevee,6,tr2,01-01-2024\n")
    stamps = dict(Pokemon.objects.filter(public_id__startswith="u").values_list("public_id", "updated_at"))
    r = run(header + "u1,A,Eevee,5,tr1,01-01-2024\nu2,B2,Eevee,6,tr3,01-01-2024\n")
    assert (r.created, r.updated, r.history_rows) == (0, 2, 1)
    after = {
        p.public_id: p for p in Pokemon.objects.filter(public_id__startswith="u").select_related("owner")
    }
    assert after["u1"].updated_at == stamps["u1"]  # identical row: not rewritten
    assert after["u2"].updated_at > stamps["u2"]
    assert (after["u2"].nickname, after["u2"].owner.public_id) == ("B2", "tr3")
    assert OwnershipChange.objects.filter(pokemon=after["u2"]).count() == 2
    assert invariants()["violations"] == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("phase", ["COPY trading_import_stage", "WITH ins AS"])
def test_import_process_killed_mid_import_leaves_nothing(phase: str, tmp_path: Path) -> None:
    """SIGKILL the importing process while it streams (COPY) or writes (the set-based insert): PostgreSQL rolls
    the one transaction back, so no pokemon, history or staging rows are left."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from django.db import connection

    run("id,firstName,lastName,dateOfBirth\n" + "".join(f"kt{i},K,T,01-01-2000\n" for i in range(50)))
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write("id,nickname,species,level,owner,dateOfOwnership\n")
        fh.writelines(
            f"kp{i:07d},nick{i},Eevee,{1 + i % 100},kt{i % 50},01-01-2020\n" for i in range(300_000)
        )
    db = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/"
        f"{db['NAME']}"
    )
    env.pop("PYTEST_CURRENT_TEST", None)
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "trading", "import", str(path), "--no-progress"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    backend = None
    deadline = time.monotonic() + 60
    try:
        with connection.cursor() as cur:
            while backend is None and proc.poll() is None and time.monotonic() < deadline:
                cur.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE %s "
                    "AND state = 'active' AND pid <> pg_backend_pid()",
                    [phase + "%"],
                )
                row = cur.fetchone()
                backend = row[0] if row else None
                if backend is None:
                    time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert backend is not None, f"the import never reached {phase!r}"
    with connection.cursor() as cur:
        while time.monotonic() < deadline:  # the backend notices the closed socket and rolls back
            cur.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = %s", [backend])
            if not cur.fetchone()[0]:
                break
            time.sleep(0.05)
    assert Pokemon.objects.count() == 0
    assert OwnershipChange.objects.count() == 0


@pytest.mark.postgres
def test_owner_checks_run_in_the_write_and_stay_deferred_for_the_rest_of_the_transaction(world: Any) -> None:
    """The import runs pokemon.owner's foreign key checks at its write statement (not in COMMIT) and sets the
    constraint back: afterwards, in the same transaction, a row naming a missing owner is still checked only at
    COMMIT, as Django's other writers expect; the constraint stays in the schema, valid and deferrable."""
    from django.db import IntegrityError, connection, transaction

    with transaction.atomic():
        r = run("id,nickname,species,level,owner,dateOfOwnership\nfk1,A,Eevee,5,tr1,01-01-2024\n")
        assert (r.created, r.history_rows) == (1, 1)
        with connection.cursor() as cur:
            # Deferred: the INSERT itself passes; the check fires when asked for (here, or at COMMIT).
            cur.execute(
                "INSERT INTO trading_pokemon (public_id, nickname, species, level, owner_id, date_of_ownership, "
                "created_at, updated_at) VALUES ('fk2', 'B', 'Eevee', 5, -1, '2024-01-01', now(), now())"
            )
            with pytest.raises(IntegrityError), transaction.atomic():
                cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            transaction.set_rollback(True)
    assert not Pokemon.objects.filter(public_id__in=["fk1", "fk2"]).exists()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT convalidated, condeferrable, condeferred FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid = 'trading_pokemon'::regclass AND confrelid = 'trading_trainer'::regclass"
        )
        assert cur.fetchall() == [(True, True, True)]


def test_history_without_database_foreign_keys_stays_consistent(world: Any) -> None:
    """History rows have no database foreign keys: deletes through the ORM still cascade / set NULL, and the
    invariant check counts anything left dangling."""
    run("id,nickname,species,level,owner,dateOfOwnership\nh1,A,Eevee,5,tr3,01-01-2024\n")
    run("id,nickname,species,level,owner,dateOfOwnership\nh1,A,Eevee,5,tr2,02-01-2024\n")  # tr3 -> tr2
    Pokemon.objects.filter(public_id="pk5").delete()  # tr3's only other pokemon: its history goes with it
    Trainer.objects.get(public_id="tr3").delete()  # named as h1's previous owner: SET_NULL
    h1 = OwnershipChange.objects.filter(pokemon__public_id="h1").order_by("id")
    tr2 = Trainer.objects.get(public_id="tr2").pk
    assert [(h.from_trainer_id, h.to_trainer_id) for h in h1] == [(None, None), (None, tr2)]
    assert invariants()["dangling_history"] == 0
    OwnershipChange.objects.create(pokemon_id=10**9, to_trainer=world.ash.trainer, at=h1[0].at, cause="admin")
    assert invariants()["dangling_history"] == 1


def test_control_characters_in_names_are_row_errors(world: Any) -> None:
    """The API's text rule (core.schemas) holds for the CSV import too, on the COPY fast path and the slow one."""
    before = snapshot()
    text = (
        "id,nickname,species,level,owner,dateOfOwnership\n"
        "pk1,Ok,Pikachu,50,tr3,01-01-2024\n"
        "pk8,Bad\x07,Onix,5,tr1,01-01-2024\n"
        "pk9,Bad,On\x1bix,5,tr1,01-01-2024\n"
    )
    with pytest.raises(ImportRejected) as exc:
        run(text)
    assert [(e["row"], e["column"], e["message"]) for e in exc.value.details["errors"]] == [
        (3, "nickname", "nickname must not contain control characters"),
        (4, "species", "species must not contain control characters"),
    ]
    assert snapshot() == before
