"""The import wizard's services: preview (per-row diff, nothing written), confirm (exactly what was previewed, or
409 import_stale), preview again."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bazaar.core.errors import Conflict, PayloadTooLarge, PermissionDenied, ValidationFailed
from bazaar.trading import page_selectors, services
from bazaar.trading.models import ImportJob, ImportPreview, OwnershipChange
from bazaar.trading.tests.conftest import owners, snapshot

HEADER = "id,nickname,species,level,owner,dateOfOwnership\n"
MOVES = (
    HEADER + "pk1,n1,Pikachu,10,tr2,01-01-2024\n"  # owner tr1 -> tr2 (date too)
    "pk2,n2,Onix,20,tr1,2024-02-03\n"  # the date only (the world's pokemon are owned since today)
    "pk8,Newbie,Eevee,3,tr1,02-01-2024\n"  # new
)


@pytest.fixture(autouse=True)
def import_dir(settings: Any, tmp_path: Any) -> Any:
    settings.TRADING_IMPORT_DIR = str(tmp_path)
    return tmp_path


def upload(text: str, name: str = "p.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), "text/csv")


def entries(preview: ImportPreview, show: str = "all") -> list[Any]:
    """The listed rows as the preview page reads them (first page)."""
    return list(page_selectors.preview_rows(preview, show=show).object_list)


def test_preview_lists_each_row_and_writes_nothing(world: Any) -> None:
    before = snapshot()
    preview = services.import_preview_create(upload=upload(MOVES), actor=world.staff)
    assert snapshot() == before
    assert (preview.kind, preview.state, preview.rows, preview.filename) == ("pokemon", "ready", 3, "p.csv")
    assert preview.totals == {
        "new": 1,
        "changed": 2,
        "unchanged": 0,
        "ownership_changes": 1,
        "errors": 0,
        "listed": 3,
    }
    rows = {e[1]: e for e in entries(preview)}
    line, _, status, moves, changes = rows["pk1"]
    assert (line, status, moves) == (2, "changed", True)
    assert ["owner", "tr1", "tr2"] in changes
    assert [c[0] for c in changes] == ["owner", "date of ownership"]
    assert rows["pk2"][2:4] == ["changed", False]
    assert rows["pk8"] == [
        4,
        "pk8",
        "new",
        False,
        [
            ["nickname", "", "Newbie"],
            ["species", "", "Eevee"],
            ["level", "", "3"],
            ["owner", "", "tr1"],
            ["date of ownership", "", "2024-01-02"],
        ],
    ]
    assert len(preview.fingerprint) == 32


def test_unchanged_rows_are_counted_not_listed(world: Any) -> None:
    services.import_csv(source=upload(MOVES), kind=None)  # the database now holds the file's values
    preview = services.import_preview_create(upload=upload(MOVES), actor=world.staff)
    assert preview.totals["unchanged"] == 3
    assert (preview.totals["changed"], preview.totals["new"], preview.totals["listed"]) == (0, 0, 0)
    assert entries(preview) == []


def test_confirm_writes_what_was_previewed(world: Any, django_capture_on_commit_callbacks: Any) -> None:
    preview = services.import_preview_create(upload=upload(MOVES), actor=world.staff)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.import_preview_confirm(preview_id=preview.pk, actor=world.staff)
    assert (job.state, job.dry_run, job.rows_written) == ("succeeded", False, 3)
    assert job.result is not None
    assert (job.result["created"], job.result["ownership_changes"], job.result["history_rows"]) == (1, 1, 2)
    assert owners()["pk1"] == "tr2"
    assert owners()["pk8"] == "tr1"
    preview.refresh_from_db()
    assert (preview.state, preview.job_id) == ("confirmed", job.pk)
    assert not os.path.exists(preview.path)
    assert not os.path.exists(preview.entries_path)
    # A second confirm (double submit, back button) imports nothing.
    history = OwnershipChange.objects.count()
    with pytest.raises(Conflict) as exc:
        services.import_preview_confirm(preview_id=preview.pk, actor=world.staff)
    assert exc.value.code == "preview_not_ready"
    assert OwnershipChange.objects.count() == history


def test_confirm_refuses_when_a_trade_happened_since_the_preview(world: Any) -> None:
    """The issue's story: the preview says pk1 goes tr1 -> tr2; then tr1 trades pk1 to tr3 through an accepted
    offer; Confirm must not silently reverse that trade."""
    preview = services.import_preview_create(upload=upload(MOVES), actor=world.staff)
    offer = services.offer_create(proposer="tr1", receiver="tr3", give=["pk1"], ask=[])
    services.offer_accept(offer_id=offer.pk)
    assert owners()["pk1"] == "tr3"
    before = snapshot()
    with pytest.raises(Conflict) as exc:
        services.import_preview_confirm(preview_id=preview.pk, actor=world.staff)
    assert exc.value.code == "import_stale"
    assert exc.value.status == 409
    assert snapshot() == before
    preview.refresh_from_db()
    assert preview.state == "stale"
    assert ImportJob.objects.count() == 0
    # A fresh preview of the same file shows the move from the new owner.
    again = services.import_preview_again(preview_id=preview.pk, actor=world.staff)
    assert again.state == "ready"
    pk1 = next(e for e in entries(again) if e[1] == "pk1")
    assert ["owner", "tr3", "tr2"] in pk1[4]
    assert services.import_preview_confirm(preview_id=again.pk, actor=world.staff).state == "succeeded"
    assert owners()["pk1"] == "tr2"


def test_an_edit_of_an_untouched_row_does_not_make_the_preview_stale(world: Any) -> None:
    preview = services.import_preview_create(upload=upload(MOVES), actor=world.staff)
    services.pokemon_update(public_id="pk5", changes={"level": 99})  # not in the file
    job = services.import_preview_confirm(preview_id=preview.pk, actor=world.staff)
    assert job.state == "succeeded"


def test_a_pokemon_created_since_the_preview_makes_it_stale(world: Any) -> None:
    preview = services.import_preview_create(upload=upload(MOVES), actor=world.staff)
    services.pokemon_create(public_id="pk8", nickname="Other", species="Abra", level=5, owner="tr3")
    with pytest.raises(Conflict) as exc:
        services.import_preview_confirm(preview_id=preview.pk, actor=world.staff)
    assert exc.value.code == "import_stale"
    assert owners()["pk8"] == "tr3"


def test_row_errors_make_an_invalid_preview_with_rows_and_columns(world: Any) -> None:
    before = snapshot()
    bad = HEADER + "pk1,n1,Pikachu,500,tr2,01-01-2024\npk9,x,y,5,nobody,01-01-2024\n"
    preview = services.import_preview_create(upload=upload(bad), actor=world.staff)
    assert snapshot() == before
    assert (preview.kind, preview.state, preview.rows, preview.totals) == (
        "pokemon",
        "invalid",
        2,
        {"errors": 2},
    )
    assert preview.errors is not None
    assert preview.errors["errors"] == [
        {"row": 2, "column": "level", "message": "level '500' is not an integer from 1 to 100"},
        {"row": 3, "column": "owner", "message": "owner 'nobody' is not a known trainer"},
    ]
    assert not os.path.exists(preview.path)
    with pytest.raises(Conflict) as exc:
        services.import_preview_confirm(preview_id=preview.pk, actor=world.staff)
    assert exc.value.code == "preview_not_ready"


def test_trainers_preview_diffs_fields(world: Any) -> None:
    csv = "id,firstName,lastName,dateOfBirth\ntr1,Ash,Ketchum,22-05-1987\ntr2,Misty,Waterflower,10-07-1988\n"
    preview = services.import_preview_create(upload=upload(csv, "t.csv"), actor=world.staff)
    assert (preview.kind, preview.totals["unchanged"], preview.totals["changed"]) == ("trainers", 1, 1)
    assert entries(preview) == [[3, "tr2", "changed", False, [["last name", "W", "Waterflower"]]]]


def test_preview_refusals_keep_nothing(world: Any, settings: Any, import_dir: Any) -> None:
    with pytest.raises(PermissionDenied):
        services.import_preview_create(upload=upload(MOVES), actor=world.ash)
    with pytest.raises(ValidationFailed) as exc:
        services.import_preview_create(upload=upload("name,age\nbob,3\n"), actor=world.staff)
    assert exc.value.code == "wrong_columns"
    settings.TRADING_IMPORT_MAX_BYTES = 10
    with pytest.raises(PayloadTooLarge) as big:
        services.import_preview_create(upload=upload(MOVES), actor=world.staff)
    assert big.value.code == "import_too_large"
    assert ImportPreview.objects.count() == 0
    assert os.listdir(import_dir) == []


def test_large_confirm_runs_as_a_job_that_rechecks(world: Any, settings: Any) -> None:
    settings.TRADING_IMPORT_ASYNC_BYTES = 10
    preview = services.import_preview_create(upload=upload(MOVES), actor=world.staff)
    services.pokemon_update(public_id="pk1", changes={"nickname": "Edited"})  # after the preview
    job = services.import_preview_confirm(preview_id=preview.pk, actor=world.staff)
    assert (job.state, job.fingerprint) == ("queued", preview.fingerprint)
    before = snapshot()
    job = services.import_job_run(job_id=job.pk)
    assert job.state == "failed"
    assert job.errors is not None
    assert job.errors["code"] == "import_stale"
    assert snapshot() == before
    assert os.path.exists(preview.path)  # kept for the fresh preview
    again = services.import_preview_again(preview_id=preview.pk, actor=world.staff)
    job = services.import_preview_confirm(preview_id=again.pk, actor=world.staff)
    job = services.import_job_run(job_id=job.pk)
    assert job.state == "succeeded"
    assert owners()["pk1"] == "tr2"
    assert not os.path.exists(preview.path)


def test_preview_pages_per_filter(world: Any, settings: Any) -> None:
    """250 rows: 3 pages of "all"; the filters page their own rows; a page past the end shows the last."""
    rows = "".join(f"px{i:03d},n{i},Abra,5,tr1,01-01-2024\n" for i in range(247))
    csv = (
        HEADER
        + "pk1,n1,Pikachu,10,tr2,01-01-2024\npk3,n3,Pikachu,30,tr3,01-01-2024\npk2,n2,Onix,20,tr1,2024-02-03\n"
    )
    preview = services.import_preview_create(upload=upload(csv + rows), actor=world.staff)
    assert preview.totals["listed"] == 250
    first = page_selectors.preview_rows(preview, show="all", page=1)
    assert (first.paginator.count, first.paginator.num_pages, len(first.object_list)) == (250, 3, 100)
    last = page_selectors.preview_rows(preview, show="all", page=99)
    assert (last.number, [r[1] for r in last.object_list][-1]) == (3, "px246")
    assert [r[1] for r in entries(preview, "owner")] == ["pk1", "pk3"]
    assert [r[1] for r in entries(preview, "changed")] == ["pk1", "pk3", "pk2"]
    new = page_selectors.preview_rows(preview, show="new", page=3)
    assert (new.paginator.count, [r[1] for r in new.object_list]) == (
        247,
        [f"px{i}" for i in range(200, 247)],
    )
    settings.TRADING_IMPORT_PREVIEW_ROWS = 10
    capped = services.import_preview_create(upload=upload(csv + rows), actor=world.staff)
    assert (capped.totals["listed"], capped.totals["new"]) == (10, 247)
    assert [r[1] for r in entries(capped, "owner")] == ["pk1", "pk3"]
