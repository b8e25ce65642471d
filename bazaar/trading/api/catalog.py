"""Trainers and pokemon: public cached reads, staff writes."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status

from bazaar.accounts.auth import current_user, user_auth
from bazaar.core.codes import CoreCode, answers
from bazaar.core.http import bytes_response
from bazaar.core.schemas import CheckedIn, Cursor, ErrorOut, KeysetOffset, Line, SearchText
from bazaar.trading import selectors, services
from bazaar.trading.codes import Code
from bazaar.trading.schemas import (
    HistoryOut,
    PokemonIn,
    PokemonOut,
    PokemonPage,
    PokemonPatch,
    TrainerDetailOut,
    TrainerIn,
    TrainerOut,
    TrainerPage,
    TrainerPatch,
)

router = Router()
JSON = "application/json"
ERRORS: dict[int, type[Schema]] = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ErrorOut,
}


class TrainerFilters(CheckedIn):
    q: SearchText | None = None
    order: Line | None = None
    limit: int | None = None
    offset: KeysetOffset | None = None
    cursor: Cursor | None = None


class PokemonFilters(CheckedIn):
    owner: SearchText | None = None
    species: SearchText | None = None
    level_min: int | None = None
    level_max: int | None = None
    order: Line | None = None
    limit: int | None = None
    offset: KeysetOffset | None = None
    cursor: Cursor | None = None


@router.get("/trainers", response={200: TrainerPage, **ERRORS}, summary="List trainers (public, cached)")
@answers(
    {
        422: [
            CoreCode.CURSOR_WITH_OFFSET,
            CoreCode.INVALID_CURSOR,
            CoreCode.INVALID_LIMIT,
            Code.INVALID_ORDER,
            CoreCode.OFFSET_TOO_DEEP,
        ]
    }
)
def trainer_list(request: HttpRequest, filters: Query[TrainerFilters]) -> HttpResponse:
    cached = selectors.trainer_list_json(**filters.dict())
    return bytes_response(request, cached, content_type=JSON)


@router.post(
    "/trainers", response={201: TrainerOut, **ERRORS}, auth=user_auth, summary="Create a trainer (staff)"
)
@answers({403: [Code.STAFF_REQUIRED], 409: [Code.TRAINER_EXISTS, Code.USER_TAKEN], 422: [Code.UNKNOWN_USER]})
def trainer_create(request: HttpRequest, payload: TrainerIn) -> Status[dict[str, Any]]:
    t = services.trainer_create(
        public_id=payload.id,
        first_name=payload.first_name,
        last_name=payload.last_name,
        date_of_birth=payload.date_of_birth,
        username=payload.username,
        actor=current_user(request),
    )
    return Status(201, selectors.trainer_dict(t))


@router.get("/trainers/{trainer_id}", response={200: TrainerDetailOut, **ERRORS}, summary="Get a trainer")
@answers({404: [Code.TRAINER_NOT_FOUND]})
def trainer_get(request: HttpRequest, trainer_id: Line) -> HttpResponse:
    return bytes_response(request, selectors.trainer_detail_json(trainer_id), content_type=JSON)


@router.patch("/trainers/{trainer_id}", response={200: TrainerOut, **ERRORS}, auth=user_auth)
@answers(
    {
        403: [Code.STAFF_REQUIRED],
        404: [Code.TRAINER_NOT_FOUND],
        409: [Code.USER_TAKEN],
        422: [Code.UNKNOWN_USER],
    }
)
def trainer_update(request: HttpRequest, trainer_id: Line, payload: TrainerPatch) -> dict[str, object]:
    changes = payload.dict(exclude_unset=True)
    t = services.trainer_update(public_id=trainer_id, changes=changes, actor=current_user(request))
    return selectors.trainer_dict(t)


@router.delete("/trainers/{trainer_id}", response={204: None, **ERRORS}, auth=user_auth)
@answers({403: [Code.STAFF_REQUIRED], 404: [Code.TRAINER_NOT_FOUND], 409: [Code.TRAINER_HAS_POKEMON]})
def trainer_delete(request: HttpRequest, trainer_id: Line, cascade: bool = False) -> Status[None]:
    """Refused (409 trainer_has_pokemon) while the trainer owns pokemon, unless ``cascade=true``."""
    services.trainer_delete(public_id=trainer_id, cascade=cascade, actor=current_user(request))
    return Status(204, None)


@router.get("/pokemon", response={200: PokemonPage, **ERRORS}, summary="List pokemon (public, cached)")
@answers(
    {
        422: [
            CoreCode.CURSOR_WITH_OFFSET,
            CoreCode.INVALID_CURSOR,
            Code.INVALID_LEVEL,
            CoreCode.INVALID_LIMIT,
            Code.INVALID_ORDER,
            CoreCode.OFFSET_TOO_DEEP,
        ]
    }
)
def pokemon_list(request: HttpRequest, filters: Query[PokemonFilters]) -> HttpResponse:
    cached = selectors.pokemon_list_json(**filters.dict())
    return bytes_response(request, cached, content_type=JSON)


@router.post(
    "/pokemon", response={201: PokemonOut, **ERRORS}, auth=user_auth, summary="Create a pokemon (staff)"
)
@answers({403: [Code.STAFF_REQUIRED], 404: [Code.TRAINER_NOT_FOUND], 409: [Code.POKEMON_EXISTS]})
def pokemon_create(request: HttpRequest, payload: PokemonIn) -> Status[dict[str, Any]]:
    p = services.pokemon_create(
        public_id=payload.id,
        nickname=payload.nickname,
        species=payload.species,
        level=payload.level,
        owner=payload.owner,
        date_of_ownership=payload.date_of_ownership,
        actor=current_user(request),
    )
    return Status(201, selectors.pokemon_dict(p, payload.owner))


@router.get("/pokemon/{pokemon_id}", response={200: PokemonOut, **ERRORS}, summary="Get a pokemon")
@answers({404: [Code.POKEMON_NOT_FOUND]})
def pokemon_get(request: HttpRequest, pokemon_id: Line) -> HttpResponse:
    return bytes_response(request, selectors.pokemon_detail_json(pokemon_id), content_type=JSON)


@router.get("/pokemon/{pokemon_id}/history", response={200: list[HistoryOut], **ERRORS})
@answers({404: [Code.POKEMON_NOT_FOUND]})
def pokemon_history(request: HttpRequest, pokemon_id: Line) -> HttpResponse:
    """Every change of owner, oldest first (cause: create, import, exchange, offer, admin)."""
    return bytes_response(request, selectors.pokemon_history_json(pokemon_id), content_type=JSON)


@router.patch("/pokemon/{pokemon_id}", response={200: PokemonOut, **ERRORS}, auth=user_auth)
@answers({403: [Code.STAFF_REQUIRED], 404: [Code.POKEMON_NOT_FOUND, Code.TRAINER_NOT_FOUND]})
def pokemon_update(request: HttpRequest, pokemon_id: Line, payload: PokemonPatch) -> dict[str, object]:
    changes = payload.dict(exclude_unset=True)
    services.pokemon_update(public_id=pokemon_id, changes=changes, actor=current_user(request))
    p = selectors.pokemon_get(pokemon_id)
    return selectors.pokemon_dict(p, p.owner.public_id)


@router.delete("/pokemon/{pokemon_id}", response={204: None, **ERRORS}, auth=user_auth)
@answers({403: [Code.STAFF_REQUIRED], 404: [Code.POKEMON_NOT_FOUND]})
def pokemon_delete(request: HttpRequest, pokemon_id: Line) -> Status[None]:
    services.pokemon_delete(public_id=pokemon_id, actor=current_user(request))
    return Status(204, None)
