"""Reads for the trading pages (a trainer's pokemon, a pokemon's history, offer boxes, import previews and job
progress). Never cached: the pages that use them are private or change with every trade. No locks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from bazaar.core.errors import NotFound
from bazaar.trading.models import (
    ImportJob,
    ImportPreview,
    OfferItem,
    OfferState,
    OwnershipChange,
    Pokemon,
    TradeOffer,
    Trainer,
)
from bazaar.trading.selectors import POKEMON_ORDER, _order, _visible_offers, offer_get
from bazaar.trading.services.import_fingerprint import FIELDS

PER_PAGE = 25
PREVIEW_PER_PAGE = 100
#: The sort choices a page offers (labels); the keys are POKEMON_ORDER's, as the API takes them.
SORTS = {
    "id": "id",
    "nickname": "name",
    "species": "species",
    "-level": "level, highest first",
    "level": "level, lowest first",
    "-date_of_ownership": "owned since, newest first",
}


def trainer_of(user: Any) -> Trainer | None:
    """The trainer the signed-in user acts for (None: the account is linked to no trainer)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return Trainer.objects.filter(user_id=user.pk).first()


def trainer_page_get(public_id: str) -> Trainer:
    trainer = Trainer.objects.filter(public_id=public_id).first()
    if trainer is None:
        raise NotFound(f"No trainer {public_id!r}.", code="trainer_not_found")
    return trainer


def pokemon_browse(
    *,
    owner: Trainer,
    q: str = "",
    level_min: int | None = None,
    level_max: int | None = None,
    sort: str = "id",
    page: int | str = 1,
    per_page: int = PER_PAGE,
) -> Page[Pokemon]:
    """One page of ``owner``'s pokemon: ``q`` matches id, nickname or species (case-insensitive, part of the
    word), a level range, a sort from SORTS (anything else sorts by id). An out-of-range page shows the last."""
    _, ordering = _order(sort if sort in SORTS else "id", POKEMON_ORDER)
    qs: QuerySet[Pokemon] = Pokemon.objects.filter(owner=owner)
    if q:
        qs = qs.filter(Q(public_id__icontains=q) | Q(nickname__icontains=q) | Q(species__icontains=q))
    if level_min is not None:
        qs = qs.filter(level__gte=level_min)
    if level_max is not None:
        qs = qs.filter(level__lte=level_max)
    return Paginator(qs.order_by(*ordering), per_page).get_page(page)


def pokemon_page_get(public_id: str) -> tuple[Pokemon, list[OwnershipChange]]:
    """A pokemon with its whole ownership history, oldest first (who, since when, through what). NotFound."""
    pokemon = Pokemon.objects.select_related("owner").filter(public_id=public_id).first()
    if pokemon is None:
        raise NotFound(f"No pokemon {public_id!r}.", code="pokemon_not_found")
    history = list(
        OwnershipChange.objects.filter(pokemon=pokemon)
        .select_related("from_trainer", "to_trainer")
        .order_by("id")
    )
    return pokemon, history


def visible_offer_ids(viewer: Any, ids: list[int]) -> set[int]:
    """Which of these offers the viewer may open (their own trainer's, or any for staff)."""
    if not ids or not getattr(viewer, "is_authenticated", False):
        return set()
    return set(_visible_offers(viewer).filter(pk__in=ids).values_list("pk", flat=True))


def trade_choices(trainer: Trainer, limit: int = 500) -> list[Pokemon]:
    """The pokemon a trade form lists for one side (by id, at most ``limit``)."""
    return list(Pokemon.objects.filter(owner=trainer).order_by("public_id")[:limit])


BOXES = {"inbox": "Received", "outbox": "Sent"}


def offer_box(*, viewer: Any, box: str, state: str = "", page: int | str = 1) -> dict[str, Any]:
    """Offers the viewer's trainer received (``inbox``) or made (``outbox``), newest first, optionally in one
    state; a staff user without a trainer sees every offer (as the API). Counts per state for the tabs."""
    trainer = trainer_of(viewer)
    qs = _visible_offers(viewer)
    if trainer is not None:
        qs = qs.filter(receiver=trainer) if box == "inbox" else qs.filter(proposer=trainer)
    elif not getattr(viewer, "is_staff", False):
        qs = qs.none()
    counts = dict.fromkeys(OfferState.values, 0)
    for row in qs.prefetch_related(None).order_by().values("state").annotate(n=Count("id")):
        counts[row["state"]] = row["n"]
    if state in OfferState.values:
        qs = qs.filter(state=state)
    return {"trainer": trainer, "counts": counts, "page": Paginator(qs, PER_PAGE).get_page(page)}


@dataclass(frozen=True)
class OfferView:
    offer: TradeOffer
    give: list[Pokemon]
    ask: list[Pokemon]
    problems: list[str]


def offer_view(offer_id: int, viewer: Any) -> OfferView:
    """One offer for its page (NotFound for anyone but its two trainers and staff), its two sides, and — while
    open, or after it became invalid — each pokemon that no longer belongs to the side giving it, in words."""
    offer = offer_get(offer_id, viewer)
    items = list(offer.items.all())
    owners = dict(
        Pokemon.objects.filter(pk__in=[i.pokemon_id for i in items]).values_list("pk", "owner__public_id")
    )
    give = [i.pokemon for i in items if i.side == OfferItem.Side.GIVE]
    ask = [i.pokemon for i in items if i.side == OfferItem.Side.ASK]
    problems: list[str] = []
    if offer.state in (OfferState.OPEN, OfferState.INVALID):
        for side, giver in ((give, offer.proposer), (ask, offer.receiver)):
            for p in side:
                now = owners.get(p.pk)
                if now != giver.public_id:
                    problems.append(
                        f"{p.nickname} ({p.public_id}) now belongs to {now}, not {giver.public_id}."
                        if now
                        else f"{p.public_id} no longer exists."
                    )
    give.sort(key=lambda p: p.public_id)
    ask.sort(key=lambda p: p.public_id)
    return OfferView(offer, give, ask, problems)


def recent_previews(limit: int = 10) -> list[ImportPreview]:
    """The latest previews (any staff member's), newest first, with their jobs."""
    return list(ImportPreview.objects.select_related("job").order_by("-id")[:limit])


def preview_get(preview_id: int) -> ImportPreview:
    preview = ImportPreview.objects.select_related("job").filter(pk=preview_id).first()
    if preview is None:
        raise NotFound("No such import preview.", code="preview_not_found")
    return preview


PREVIEW_FILTERS = {"all": "all listed", "new": "new", "changed": "changed", "owner": "ownership changes"}


def preview_rows(preview: ImportPreview, *, show: str = "all", page: int | str = 1) -> Page[Any]:
    """One page of a ready preview's listed rows, each [line, id, status, moves owner, [[field, old, new], ...]]
    (a new row's old values are ""), filtered by ``show`` (PREVIEW_FILTERS). Reads that page only from the file
    the preview wrote (``write_pages``); empty once the file is gone."""
    try:
        with open(preview.entries_path, "rb") as f:
            f.seek(int(f.readline()))
            index = json.loads(f.read()).get(show if show in PREVIEW_FILTERS else "all", {})
            pages = Paginator(range(int(index.get("count", 0))), PREVIEW_PER_PAGE).get_page(page)
            rows: list[Any] = []
            if index.get("pages"):
                offset, length = index["pages"][pages.number - 1]
                f.seek(offset)
                rows = json.loads(f.read(length))
    except (OSError, ValueError):
        return Paginator([], PREVIEW_PER_PAGE).get_page(1)
    fields = FIELDS.get(preview.kind, ())
    for r in rows:
        if r[2] == "new":
            r[4] = [[name, "", value] for name, value in zip(fields, r[4], strict=False)]
    pages.object_list = rows
    return pages


def import_job_for_page(job_id: int) -> tuple[ImportJob, ImportPreview | None]:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such import job.", code="job_not_found")
    return job, ImportPreview.objects.filter(job=job).first()


def import_job_progress(job: ImportJob, preview: ImportPreview | None) -> dict[str, Any]:
    """What the progress bar shows: rows validated of the file's rows (known from the preview), the phase, the
    rate so far and the time left at that rate; ``done`` once the job finished."""
    total = preview.rows if preview is not None else 0
    done = job.state in (ImportJob.State.SUCCEEDED, ImportJob.State.FAILED)
    validated = total if job.state == ImportJob.State.SUCCEEDED and total else job.rows_validated
    elapsed = max((timezone.now() - job.created_at).total_seconds(), 0.001)
    if job.finished_at is not None:
        elapsed = max((job.finished_at - job.created_at).total_seconds(), 0.001)
    rate = validated / elapsed if validated else 0.0
    if job.state == ImportJob.State.QUEUED:
        phase = "waiting for a worker"
    elif job.state == ImportJob.State.RUNNING:
        phase = "writing" if total and validated >= total else "validating"
    else:
        phase = str(job.state)
    left = (total - validated) / rate if rate and total > validated and not done else None
    percent = 100 if job.state == ImportJob.State.SUCCEEDED else int(100 * validated / total) if total else 0
    return {
        "id": job.pk,
        "state": job.state,
        "phase": phase,
        "done": done,
        "rows_total": total,
        "rows_validated": validated,
        "rows_written": job.rows_written,
        "percent": min(percent, 100),
        "rate": round(rate),
        "seconds_left": round(left) if left is not None else None,
        "elapsed": round(elapsed, 1),
    }
