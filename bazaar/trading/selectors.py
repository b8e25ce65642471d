"""Trading reads. List/detail JSON is built once per cache generation and served as stored bytes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db.models import Q, QuerySet, Subquery

from bazaar.core.cache import Cached
from bazaar.core.errors import NotFound, ValidationFailed
from bazaar.core.pagination import clamp, keyset_page
from bazaar.trading import cache as tcache
from bazaar.trading import conf
from bazaar.trading.models import ImportJob, OfferItem, OwnershipChange, Pokemon, TradeOffer, Trainer

TRAINER_ORDER = {
    "id": "public_id",
    "last_name": "last_name",
    "first_name": "first_name",
    "date_of_birth": "date_of_birth",
}
POKEMON_ORDER = {
    "id": "public_id",
    "nickname": "nickname",
    "species": "species",
    "level": "level",
    "date_of_ownership": "date_of_ownership",
}


def _order(value: str | None, allowed: dict[str, str]) -> tuple[str, list[str]]:
    value = (value or "id").strip()
    desc = value.startswith("-")
    name = value.lstrip("-")
    if name not in allowed:
        raise ValidationFailed(
            "Unknown order.",
            code="invalid_order",
            details={"allowed": sorted(allowed) + [f"-{k}" for k in sorted(allowed)]},
        )
    field = ("-" if desc else "") + allowed[name]
    tiebreak = "-public_id" if desc else "public_id"
    return value, [field] if allowed[name] == "public_id" else [field, tiebreak]


def _variant(kind: str, payload: Any) -> str:
    """A short, key-safe variant name (user input never goes into a cache key verbatim)."""
    raw = json.dumps(payload, sort_keys=True, default=str).encode()
    return kind + ":" + hashlib.blake2b(raw, digest_size=16).hexdigest()


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def trainer_dict(t: Trainer) -> dict[str, Any]:
    return {
        "id": t.public_id,
        "first_name": t.first_name,
        "last_name": t.last_name,
        "date_of_birth": t.date_of_birth.isoformat(),
    }


def pokemon_dict(p: Pokemon, owner_public_id: str) -> dict[str, Any]:
    return {
        "id": p.public_id,
        "nickname": p.nickname,
        "species": p.species,
        "level": p.level,
        "owner": owner_public_id,
        "date_of_ownership": p.date_of_ownership.isoformat(),
    }


def trainer_page(
    *, q: str | None, order: str | None, limit: int | None, offset: int | None, cursor: str | None = None
) -> dict[str, Any]:
    """A page of trainers (filter ``q`` on id/first/last name, ``order`` from TRAINER_ORDER), a keyset page
    (:func:`bazaar.core.pagination.keyset_page`: ``cursor``/``next_cursor``, bounded count). ValidationFailed for a
    bad limit/offset/order/cursor. No locks."""
    order_key, ordering = _order(order, TRAINER_ORDER)
    qs: QuerySet[Trainer] = Trainer.objects.all()
    if q:
        qs = qs.filter(Q(public_id__icontains=q) | Q(first_name__icontains=q) | Q(last_name__icontains=q))
    page = keyset_page(qs, ordering=ordering, order_key=order_key, limit=limit, offset=offset, cursor=cursor)
    return {**page, "items": [trainer_dict(t) for t in page["items"]]}


def trainer_list_json(
    *, q: str | None, order: str | None, limit: int | None, offset: int | None, cursor: str | None = None
) -> Cached:
    """Cached bytes of :func:`trainer_page` under the TRAINERS scope; the variant is the validated parameters."""
    lim, off = clamp(limit, offset)
    order_key, _ = _order(order, TRAINER_ORDER)
    variant = _variant("l", [q or "", order_key, lim, off, cursor or ""])
    return tcache.trainers_json().get_or_build(
        tcache.TRAINERS,
        variant,
        lambda: _dumps(trainer_page(q=q, order=order_key, limit=lim, offset=off, cursor=cursor)),
    )


def trainer_get(public_id: str) -> Trainer:
    trainer = Trainer.objects.filter(public_id=public_id).first()
    if trainer is None:
        raise NotFound(f"No trainer {public_id!r}.", code="trainer_not_found")
    return trainer


def trainer_detail_json(public_id: str) -> Cached:
    """Cached bytes of one trainer with their pokemon count (under the POKEMON scope: it moves with trades)."""

    def build() -> bytes:
        trainer = trainer_get(public_id)
        return _dumps(
            {**trainer_dict(trainer), "pokemon_count": Pokemon.objects.filter(owner=trainer).count()}
        )

    return tcache.pokemon_json().get_or_build(tcache.POKEMON, _variant("t", public_id), build)


def pokemon_page(
    *,
    owner: str | None,
    species: str | None,
    level_min: int | None,
    level_max: int | None,
    order: str | None,
    limit: int | None,
    offset: int | None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """A keyset page of pokemon filtered by owner id, species (case-insensitive exact), level range. No locks."""
    order_key, ordering = _order(order, POKEMON_ORDER)
    fields = ("public_id", "nickname", "species", "level", "date_of_ownership")
    if owner:
        # The owner's row id as a subquery (an InitPlan) rather than a join: with a constant owner_id the planner
        # walks the (owner, public_id) index for one trainer's page instead of the whole public_id index.
        owner_id = Trainer.objects.filter(public_id=owner).values("id")[:1]
        qs = Pokemon.objects.only(*fields).filter(owner_id=Subquery(owner_id))
    else:
        qs = Pokemon.objects.select_related("owner").only(*fields, "owner__public_id")
    if species:
        qs = qs.filter(species__iexact=species)
    if level_min is not None:
        qs = qs.filter(level__gte=level_min)
    if level_max is not None:
        qs = qs.filter(level__lte=level_max)
    page = keyset_page(qs, ordering=ordering, order_key=order_key, limit=limit, offset=offset, cursor=cursor)
    return {**page, "items": [pokemon_dict(p, owner or p.owner.public_id) for p in page["items"]]}


def pokemon_list_json(**params: Any) -> Cached:
    """Cached bytes of :func:`pokemon_page` under the POKEMON scope."""
    lim, off = clamp(params.get("limit"), params.get("offset"))
    order_key, _ = _order(params.get("order"), POKEMON_ORDER)
    for bound in ("level_min", "level_max"):
        v = params.get(bound)
        if v is not None and not 1 <= v <= 100:
            raise ValidationFailed(f"{bound} must be from 1 to 100.", code="invalid_level")
    norm = {**params, "limit": lim, "offset": off, "order": order_key}
    variant = _variant("l", norm)
    return tcache.pokemon_json().get_or_build(tcache.POKEMON, variant, lambda: _dumps(pokemon_page(**norm)))


def pokemon_get(public_id: str) -> Pokemon:
    pokemon = Pokemon.objects.select_related("owner").filter(public_id=public_id).first()
    if pokemon is None:
        raise NotFound(f"No pokemon {public_id!r}.", code="pokemon_not_found")
    return pokemon


def pokemon_detail_json(public_id: str) -> Cached:
    def build() -> bytes:
        p = pokemon_get(public_id)
        return _dumps(pokemon_dict(p, p.owner.public_id))

    return tcache.pokemon_json().get_or_build(tcache.POKEMON, _variant("p", public_id), build)


def pokemon_history(public_id: str) -> list[dict[str, Any]]:
    """Every ownership change of a pokemon, oldest first. NotFound."""
    pokemon = pokemon_get(public_id)
    rows = (
        OwnershipChange.objects.filter(pokemon=pokemon)
        .select_related("from_trainer", "to_trainer")
        .order_by("id")
    )
    return [
        {
            "at": h.at.isoformat(),
            "cause": h.cause,
            "from": h.from_trainer.public_id if h.from_trainer else None,
            "to": h.to_trainer.public_id if h.to_trainer else None,
            "offer": h.offer_id,
        }
        for h in rows
    ]


def pokemon_history_json(public_id: str) -> Cached:
    return tcache.pokemon_json().get_or_build(
        tcache.POKEMON, _variant("h", public_id), lambda: _dumps(pokemon_history(public_id))
    )


def offer_dict(offer: TradeOffer) -> dict[str, Any]:
    items = list(offer.items.all())
    return {
        "id": offer.pk,
        "proposer": offer.proposer.public_id,
        "receiver": offer.receiver.public_id,
        "state": offer.state,
        "reason": offer.reason,
        "message": offer.message,
        "counter_to": offer.counter_to_id,
        "give": sorted(i.pokemon.public_id for i in items if i.side == OfferItem.Side.GIVE),
        "ask": sorted(i.pokemon.public_id for i in items if i.side == OfferItem.Side.ASK),
        "created_at": offer.created_at,
        "expires_at": offer.expires_at,
        "decided_at": offer.decided_at,
    }


def _offers() -> QuerySet[TradeOffer]:
    return TradeOffer.objects.select_related("proposer", "receiver").prefetch_related("items__pokemon")


def _visible_offers(viewer: Any) -> QuerySet[TradeOffer]:
    """Offers ``viewer`` may see: all for staff (and internal callers passing None), else the offers of the
    trainer linked to the user (either side). An offer is private to its two parties."""
    qs = _offers()
    if viewer is None or getattr(viewer, "is_staff", False):
        return qs
    return qs.filter(Q(proposer__user_id=viewer.pk) | Q(receiver__user_id=viewer.pk))


def offer_get(offer_id: int, viewer: Any = None) -> TradeOffer:
    """One offer; NotFound ``offer_not_found`` also when ``viewer`` is not a party to it (nor staff)."""
    offer = _visible_offers(viewer).filter(pk=offer_id).first()
    if offer is None:
        raise NotFound("No such offer.", code="offer_not_found")
    return offer


def offer_page(
    *, trainer: str | None, state: str | None, limit: int | None, offset: int | None, viewer: Any = None
) -> dict[str, Any]:
    """Offers (newest first) ``viewer`` may see, involving ``trainer`` (either side) and/or in ``state``. Not
    cached: offers are read by their parties, rarely, and change state often. No locks."""
    lim, off = clamp(limit, offset)
    qs = _visible_offers(viewer)
    if trainer:
        qs = qs.filter(Q(proposer__public_id=trainer) | Q(receiver__public_id=trainer))
    if state:
        qs = qs.filter(state=state)
    return {
        "count": qs.count(),
        "limit": lim,
        "offset": off,
        "items": [offer_dict(o) for o in qs[off : off + lim]],
    }


def import_job_get(job_id: int) -> ImportJob:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such import job.", code="job_not_found")
    return job


def trainer_html_page(page: int) -> dict[str, Any]:
    """Context for the public trainer list page: PAGE_SIZE trainers per page, ordered by id."""
    size = conf.page_size()
    qs = Trainer.objects.order_by("public_id")
    count = qs.count()
    pages = max(1, (count + size - 1) // size)
    page = min(max(page, 1), pages)
    start = (page - 1) * size
    return {
        "trainers": list(qs[start : start + size]),
        "page": page,
        "pages": pages,
        "count": count,
        "prev": page - 1 if page > 1 else None,
        "next": page + 1 if page < pages else None,
    }
