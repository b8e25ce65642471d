"""Customers, payments, holds and statements."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Status

from bazaar.accounts.auth import current_user
from bazaar.core.codes import CoreCode, answers
from bazaar.core.pagination import Page, paginate
from bazaar.core.schemas import ErrorOut, Int64, Offset, SearchText
from bazaar.rentals import selectors, services
from bazaar.rentals.api._router import router
from bazaar.rentals.codes import Code
from bazaar.rentals.schemas import (
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    HoldIn,
    HoldOut,
    PaymentIn,
    PaymentOut,
    StatementOut,
)

ERR = {404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


@router.get("/customers", response={200: Page[CustomerOut], 422: ErrorOut})
@answers({422: [CoreCode.INVALID_LIMIT]})
def customers_list(
    request: HttpRequest, q: SearchText = "", limit: Int64 | None = None, offset: Offset = 0
) -> Any:
    return paginate(selectors.customer_list(q=q or None), limit, offset)


@router.post("/customers", response={201: CustomerOut, **ERR})
@answers({422: [Code.INVALID_EMAIL, Code.INVALID_NAME, Code.INVALID_PHONE, Code.INVALID_STATUS]})
def customers_create(request: HttpRequest, payload: CustomerIn) -> Any:
    return Status(201, services.customer_create(**payload.model_dump()))


@router.get("/customers/{customer_id}", response={200: CustomerOut, 404: ErrorOut})
@answers({404: [Code.CUSTOMER_NOT_FOUND]})
def customers_get(request: HttpRequest, customer_id: Int64) -> Any:
    return selectors.customer_get(customer_id=customer_id)


@router.patch("/customers/{customer_id}", response={200: CustomerOut, **ERR})
@answers(
    {
        404: [Code.CUSTOMER_NOT_FOUND],
        422: [Code.INVALID_EMAIL, Code.INVALID_NAME, Code.INVALID_PHONE, Code.INVALID_STATUS],
    }
)
def customers_update(request: HttpRequest, customer_id: Int64, payload: CustomerPatch) -> Any:
    """Change a customer; ``status: blocked`` stops new rentals (returns still work)."""
    return services.customer_update(customer_id=customer_id, **payload.model_dump(exclude_unset=True))


@router.get("/customers/{customer_id}/statement", response={200: StatementOut, 404: ErrorOut})
@answers({404: [Code.CUSTOMER_NOT_FOUND]})
def customers_statement(request: HttpRequest, customer_id: Int64) -> Any:
    """Open rentals (with the charge so far), past rentals with their charge breakdowns, payments, balance."""
    return selectors.customer_statement(customer_id=customer_id)


@router.post("/customers/{customer_id}/payments", response={201: PaymentOut, **ERR})
@answers({404: [Code.CUSTOMER_NOT_FOUND], 422: [Code.INVALID_AMOUNT, Code.INVALID_TIME]})
def payments_create(request: HttpRequest, customer_id: Int64, payload: PaymentIn) -> Any:
    return Status(
        201,
        services.payment_record(
            customer_id=customer_id,
            amount=payload.amount,
            note=payload.note,
            received_at=payload.received_at,
            by=current_user(request),
        ),
    )


@router.post("/holds", response={201: HoldOut, **ERR})
@answers({404: [Code.CUSTOMER_NOT_FOUND, Code.TITLE_NOT_FOUND], 409: [Code.HOLD_EXISTS]})
def holds_create(request: HttpRequest, payload: HoldIn) -> Any:
    """Put a customer on a title's waiting list (blocks other customers' renewals while no copy is free)."""
    return Status(201, services.hold_place(customer_id=payload.customer_id, title_id=payload.title_id))


@router.delete("/holds/{hold_id}", response={200: HoldOut, 404: ErrorOut})
@answers({404: [Code.HOLD_NOT_FOUND]})
def holds_cancel(request: HttpRequest, hold_id: Int64) -> Any:
    return services.hold_cancel(hold_id=hold_id)
