"""The import wizard's writes: preview an uploaded CSV (nothing written), confirm exactly what was previewed, or
preview the same file again after the data changed.

The preview is the import itself run as a dry run (``import_csv``: the same parsing, checks and error messages as
the API and the CLI), with an ``inspect`` hook that reads the per-row diff from the staging table and fingerprints
the rows the file touches (``import_fingerprint``). Confirm runs the same import again on the stored file with a
hook that locks those rows and compares the fingerprint: a change in between is a 409 ``import_stale`` with
nothing written, never a silent override.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from typing import Any

from django.db import transaction
from django.utils import timezone

from bazaar.core.errors import Conflict, DomainError, NotFound
from bazaar.trading import conf
from bazaar.trading.models import ImportJob, ImportPreview
from bazaar.trading.services.common import require_staff
from bazaar.trading.services.import_fingerprint import diff, expect, fingerprint, listed_rows, totals
from bazaar.trading.services.imports import ImportRejected, import_csv
from bazaar.trading.services.jobs import import_file_store, import_job_enqueue, import_upload_size

#: Rows per page of a preview (the page reads one page from the file, see ``write_pages``).
PER_PAGE = 100


class _Collector:
    """The preview's ``inspect`` hook: totals and fingerprint from the database, the rows to list one by one."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.entries: list[list[Any]] = []
        self.totals = {"new": 0, "changed": 0, "unchanged": 0, "ownership_changes": 0}
        self.fingerprint = ""

    def __call__(self, cur: Any, kind: str) -> None:
        # The database counts and fingerprints every row; only the rows to list come here.
        self.totals = totals(cur, kind)
        self.fingerprint = fingerprint(cur, kind)
        entries = self.entries
        # Many small lists and no cycles: the cyclic collector would rescan them all again and again (it tripled
        # the time of a 100,000-row preview).
        gc.disable()
        try:
            for row in listed_rows(cur, kind, self.keep):
                status, changes = diff(kind, row)
                moves = status == "changed" and any(c[0] == "owner" for c in changes)
                entries.append([int(row[0]), row[1], status, moves, changes])
        finally:
            gc.enable()


HEAD = 17  # the first line: "%016d\n", where the index starts


def write_pages(path: str, entries: list[list[Any]], per_page: int) -> None:
    """The listed rows as pages of JSON, per filter (all, new, changed, owner), so a page of the preview reads
    ``per_page`` rows, never the whole list. Layout: a fixed 17-byte line with the offset of the index, one line
    per page, then the index {filter: {"count": rows, "pages": [[offset, length], ...]}}."""
    views = {
        "all": entries,
        "new": [e for e in entries if e[2] == "new"],
        "changed": [e for e in entries if e[2] == "changed"],
        "owner": [e for e in entries if e[3]],
    }
    index: dict[str, dict[str, Any]] = {}
    with open(path, "wb") as out:
        out.write(b"0" * (HEAD - 1) + b"\n")
        offset = HEAD
        for name, rows in views.items():
            if name != "all" and len(rows) == len(entries):
                index[name] = index["all"]  # the same rows (every listed row new, say): the same pages
                continue
            spans: list[list[int]] = []
            for start in range(0, len(rows), per_page):
                blob = json.dumps(rows[start : start + per_page], separators=(",", ":")).encode() + b"\n"
                spans.append([offset, len(blob)])
                out.write(blob)
                offset += len(blob)
            index[name] = {"count": len(rows), "pages": spans}
        out.write(json.dumps(index, separators=(",", ":")).encode())
        out.seek(0)
        out.write(b"%016d\n" % offset)


def _discard(path: str) -> None:
    for name in (path, f"{path}.preview.json"):
        with contextlib.suppress(OSError):
            os.remove(name)


def _preview_stored(*, path: str, size: int, filename: str, kind: str | None, user: Any) -> ImportPreview:
    collector = _Collector(conf.import_preview_rows())
    base = {"path": path, "size": size, "filename": filename[:200], "created_by": user}
    started = timezone.now()
    try:
        with open(path, "rb") as source:
            result = import_csv(source=source, kind=kind, dry_run=True, inspect=collector)
    except ImportRejected as exc:
        _discard(path)
        details = exc.details or {}
        return ImportPreview.objects.create(
            **base,
            kind=details.get("kind") or kind or "",
            state=ImportPreview.State.INVALID,
            rows=details.get("rows", 0),
            totals={"errors": details.get("error_count", 0)},
            errors=details,
            seconds=(timezone.now() - started).total_seconds(),
        )
    except DomainError:
        _discard(path)
        raise
    totals = {**collector.totals, "errors": 0, "listed": len(collector.entries)}
    gc.disable()
    try:
        write_pages(f"{path}.preview.json", collector.entries, PER_PAGE)
    finally:
        gc.enable()
    return ImportPreview.objects.create(
        **base,
        kind=result.kind,
        state=ImportPreview.State.READY,
        rows=result.rows,
        totals=totals,
        fingerprint=collector.fingerprint,
        seconds=(timezone.now() - started).total_seconds(),
    )


def import_preview_create(*, upload: Any, kind: str | None = None, actor: Any = None) -> ImportPreview:
    """Store an uploaded CSV and check it without writing anything: the import's own dry run plus a per-row diff
    (new / changed field by field, ownership changes / unchanged) and a fingerprint of the rows it touches.
    Staff only (PermissionDenied ``staff_required``). PayloadTooLarge ``import_too_large`` over the limit (nothing
    stored); ValidationFailed ``empty_file`` / ``wrong_columns`` / ``invalid_encoding`` / ``not_csv`` (nothing
    kept). Row errors are not raised: the preview is saved as ``invalid`` with the errors, to be shown. Takes no
    locks (the dry run's transaction is rolled back)."""
    require_staff(actor)
    size = import_upload_size(upload)
    path = import_file_store(upload)
    return _preview_stored(
        path=path, size=size, filename=getattr(upload, "name", "") or "upload.csv", kind=kind, user=actor
    )


def _locked(preview_id: int) -> ImportPreview:
    preview = ImportPreview.objects.select_for_update().filter(pk=preview_id).first()
    if preview is None:
        raise NotFound("No such import preview.", code="preview_not_found")
    return preview


def import_preview_confirm(*, preview_id: int, actor: Any = None) -> ImportJob:
    """Import exactly what the preview showed. Staff only. Locks the preview row (a double submit imports once:
    Conflict ``preview_not_ready`` for a preview that is not ``ready``). A file up to TRADING_IMPORT_ASYNC_BYTES
    is imported now: the rows it touches are locked and fingerprinted inside the import's transaction, and
    Conflict ``import_stale`` (the preview becomes ``stale``, nothing written) if they changed since the preview;
    the returned job is already finished. A larger file becomes a queued ImportJob carrying the fingerprint (the
    worker makes the same check and fails the job with ``import_stale``)."""
    require_staff(actor)
    try:
        with transaction.atomic():
            preview = _locked(preview_id)
            if preview.state != ImportPreview.State.READY:
                raise Conflict(
                    f"This preview is {preview.get_state_display()}; it cannot be confirmed.",
                    code="preview_not_ready",
                    details={"state": preview.state},
                )
            if not os.path.exists(preview.path):
                raise Conflict(
                    "The uploaded file is no longer stored; upload it again.",
                    code="preview_not_ready",
                    details={"state": preview.state},
                )
            common: dict[str, Any] = {
                "path": preview.path,
                "size": preview.size,
                "kind": preview.kind,
                "dry_run": False,
            }
            if preview.size > conf.import_async_bytes():
                job = import_job_enqueue(**common, user=actor, fingerprint=preview.fingerprint)
            else:
                with open(preview.path, "rb") as source:
                    result = import_csv(
                        source=source, kind=preview.kind, dry_run=False, inspect=expect(preview.fingerprint)
                    )
                job = ImportJob.objects.create(
                    **common,
                    state=ImportJob.State.SUCCEEDED,
                    fingerprint=preview.fingerprint,
                    rows_validated=result.rows,
                    rows_written=result.rows,
                    result=result.as_dict(),
                    created_by=actor,
                    finished_at=timezone.now(),
                )
                transaction.on_commit(lambda: _discard(preview.path))
            preview.state = ImportPreview.State.CONFIRMED
            preview.job = job
            preview.save(update_fields=["state", "job"])
    except Conflict as exc:
        if exc.code == "import_stale":
            ImportPreview.objects.filter(pk=preview_id, state=ImportPreview.State.READY).update(
                state=ImportPreview.State.STALE
            )
        raise
    return job


def import_preview_again(*, preview_id: int, actor: Any = None) -> ImportPreview:
    """A fresh preview of the same stored file (after ``import_stale``, or to see the current effect of a preview
    not yet confirmed). Staff only. Conflict ``preview_not_ready`` when the file was imported (or is being
    imported) or is gone. The old preview is marked ``stale`` and hands its file to the new one. Locks the old
    preview row."""
    require_staff(actor)
    with transaction.atomic():
        old = _locked(preview_id)
        job = old.job
        busy_or_done = job is not None and job.state != ImportJob.State.FAILED
        if old.state == ImportPreview.State.INVALID or busy_or_done or not os.path.exists(old.path):
            raise Conflict(
                "This file was imported already or is no longer stored; upload it again.",
                code="preview_not_ready",
                details={"state": old.state},
            )
        old.state = ImportPreview.State.STALE
        old.save(update_fields=["state"])
        with contextlib.suppress(OSError):
            os.remove(old.entries_path)
        return _preview_stored(path=old.path, size=old.size, filename=old.filename, kind=old.kind, user=actor)
