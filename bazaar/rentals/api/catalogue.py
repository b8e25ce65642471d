"""Titles, copies and price plans."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Status

from bazaar.core.codes import CoreCode, answers
from bazaar.core.errors import ValidationFailed
from bazaar.core.http import bytes_response
from bazaar.core.schemas import ErrorOut, Int64, Line, Offset, SearchText
from bazaar.rentals import cache, pricing, render, selectors, services
from bazaar.rentals.api._router import router
from bazaar.rentals.codes import Code
from bazaar.rentals.schemas import (
    CopiesIn,
    CopyOut,
    CopyPatch,
    PlanOut,
    PlanPatch,
    TitleIn,
    TitleOut,
    TitlePage,
    TitlePatch,
)
from bazaar.rentals.services.catalogue import clean_kind

ERR = {404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


@router.get("/titles", response={200: TitlePage, 422: ErrorOut}, auth=None)
@answers({422: [CoreCode.INVALID_LIMIT]})
def titles_list(
    request: HttpRequest, q: SearchText = "", limit: Int64 | None = None, offset: Offset = 0
) -> HttpResponse:
    """Public: search titles by title, author or ISBN, with availability counts (cached bytes, ETag)."""
    return bytes_response(request, render.cached_title_list_json(q, limit, offset), content_type=cache.JSON)


@router.get("/titles/{title_id}", response={200: TitleOut, 404: ErrorOut}, auth=None)
@answers({404: [Code.TITLE_NOT_FOUND]})
def titles_get(request: HttpRequest, title_id: Int64) -> HttpResponse:
    """Public: one title with availability counts (cached bytes, ETag)."""
    return bytes_response(request, render.cached_title_json(title_id), content_type=cache.JSON)


@router.post("/titles", response={201: TitleOut, **ERR})
@answers({409: [Code.ISBN_TAKEN], 422: [Code.INVALID_ISBN, Code.INVALID_KIND, Code.REQUIRED]})
def titles_create(request: HttpRequest, payload: TitleIn) -> Any:
    title = services.title_create(**payload.model_dump())
    return Status(201, selectors.title_get(title_id=title.pk))


@router.patch("/titles/{title_id}", response={200: TitleOut, **ERR})
@answers(
    {
        404: [Code.TITLE_NOT_FOUND],
        409: [Code.ISBN_TAKEN],
        422: [Code.INVALID_ISBN, Code.INVALID_KIND, Code.REQUIRED],
    }
)
def titles_update(request: HttpRequest, title_id: Int64, payload: TitlePatch) -> Any:
    services.title_update(title_id=title_id, **payload.model_dump(exclude_unset=True))
    return selectors.title_get(title_id=title_id)


@router.get("/titles/{title_id}/copies", response={200: list[CopyOut], 404: ErrorOut})
@answers({404: [Code.TITLE_NOT_FOUND]})
def copies_list(request: HttpRequest, title_id: Int64) -> Any:
    selectors.title_get(title_id=title_id)
    return list(selectors.copy_list(title_id=title_id))


@router.post("/titles/{title_id}/copies", response={201: list[CopyOut], **ERR})
@answers(
    {404: [Code.TITLE_NOT_FOUND], 409: [Code.BARCODE_TAKEN], 422: [Code.INVALID_BARCODE, Code.INVALID_COUNT]}
)
def copies_add(request: HttpRequest, title_id: Int64, payload: CopiesIn) -> Any:
    """Add stock: ``count`` copies with generated barcodes and/or the given ``barcodes``."""
    return Status(201, services.copies_add(title_id=title_id, count=payload.count, barcodes=payload.barcodes))


@router.patch("/copies/{copy_id}", response={200: CopyOut, **ERR})
@answers({404: [Code.COPY_NOT_FOUND], 409: [Code.COPY_ON_HOLD, Code.COPY_RENTED], 422: [Code.INVALID_STATE]})
def copies_update(request: HttpRequest, copy_id: Int64, payload: CopyPatch) -> Any:
    """Mark a copy available, lost or withdrawn (a rented copy must be returned first: 409)."""
    return services.copy_set_state(copy_id=copy_id, state=payload.state)


@router.get("/price-plans", response=list[PlanOut])
def plans_list(request: HttpRequest) -> Any:
    return list(selectors.plan_list())


@router.patch("/price-plans/{kind}", response={200: PlanOut, **ERR})
@answers({422: [Code.INVALID_KIND, Code.INVALID_PLAN]})
def plans_update(request: HttpRequest, kind: Line, payload: PlanPatch) -> Any:
    """Change prices for a kind. Open rentals keep the terms they started with."""
    return services.plan_update(kind=kind, **payload.model_dump(exclude_unset=True))


@router.get("/price-plans/{kind}/quote", response={200: dict[str, Any], 422: ErrorOut})
@answers({422: [Code.INVALID_DAYS, Code.INVALID_KIND]})
def plans_quote(request: HttpRequest, kind: Line, days: Int64, late_days: Int64 = 0) -> Any:
    """What a rental of ``days`` days, ``late_days`` past due, costs under the current plan (with breakdown)."""
    if not 1 <= days <= 3650 or not 0 <= late_days <= 3650:
        raise ValidationFailed("days must be 1..3650 and late_days 0..3650.", code="invalid_days")
    terms = services.plan_terms(clean_kind(kind))
    return pricing.compute(terms, days=days, late_days=late_days).to_json()
