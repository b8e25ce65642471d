"""Rent, return, renew, and rental lists."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Status
from ninja.errors import ValidationError as NinjaValidationError
from pydantic import ValidationError as PydanticValidationError

from bazaar.accounts.auth import current_user
from bazaar.core.codes import CoreCode, answers
from bazaar.core.errors import BadRequest, UnsupportedMediaType
from bazaar.core.http import is_json_content_type
from bazaar.core.pagination import paginate
from bazaar.core.schemas import ErrorOut, Int64, Offset
from bazaar.rentals import selectors, services
from bazaar.rentals.api._router import router
from bazaar.rentals.codes import Code
from bazaar.rentals.schemas import RentalOut, RentalPage, RentIn, ReturnCopyIn, ReturnIn

ERR = {404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


@router.get("/rentals", response={200: RentalPage, 422: ErrorOut})
@answers({422: [CoreCode.INVALID_LIMIT]})
def rentals_list(
    request: HttpRequest,
    open: bool | None = None,
    overdue: bool | None = None,
    customer_id: Int64 | None = None,
    title_id: Int64 | None = None,
    limit: Int64 | None = None,
    offset: Offset = 0,
) -> Any:
    """Rentals, newest first; filter by ``open``, ``overdue``, ``customer_id``, ``title_id``."""
    qs = selectors.rental_list(is_open=open, overdue=overdue, customer_id=customer_id, title_id=title_id)
    return paginate(qs, limit, offset)


@router.post("/rentals", response={201: RentalOut, **ERR})
@answers(
    {
        404: [Code.COPY_NOT_FOUND, Code.CUSTOMER_NOT_FOUND, Code.TITLE_NOT_FOUND],
        409: [
            Code.BALANCE_TOO_HIGH,
            Code.COPY_NOT_AVAILABLE,
            Code.COPY_ON_HOLD,
            Code.CUSTOMER_BLOCKED,
            Code.NO_COPY_AVAILABLE,
            Code.RENTAL_LIMIT_REACHED,
        ],
        422: [Code.INVALID_DUE_DATE, Code.TITLE_OR_COPY],
    }
)
def rentals_rent(request: HttpRequest, payload: RentIn) -> Any:
    """Rent a free copy of a title, or a given copy. The answer carries the rental, copy and customer ids."""
    rental = services.rental_rent(**payload.model_dump(), by=current_user(request))
    return Status(201, rental)


@router.get("/rentals/{rental_id}", response={200: RentalOut, 404: ErrorOut})
@answers({404: [Code.RENTAL_NOT_FOUND]})
def rentals_get(request: HttpRequest, rental_id: Int64) -> Any:
    return selectors.rental_get(rental_id=rental_id)


def _optional_body(request: HttpRequest) -> ReturnIn:
    """The return body is optional (most returns are "now"): an empty body means no backdating."""
    # The content type first: a form post (session + CSRF check) has already read the stream, so .body would raise.
    if not is_json_content_type(request.META.get("CONTENT_TYPE", "")):
        form = request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded")
        if (request.POST or request.FILES) if form else request.body.strip():
            raise UnsupportedMediaType()  # a body that is not JSON is refused, not ignored (issue 14)
        return ReturnIn()
    raw = request.body.strip()
    if not raw:
        return ReturnIn()
    try:
        return ReturnIn.model_validate_json(raw)
    except PydanticValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):  # the API's one answer to a broken body
            raise BadRequest("The request body is not valid JSON.", code="malformed_json")
        # the API's one mapping of validation errors (codes from core.schemas: invalid_text, invalid_datetime)
        raise NinjaValidationError([dict(e) for e in exc.errors(include_url=False, include_context=False)])


@router.post(
    "/rentals/{rental_id}/return",
    response={200: RentalOut, **ERR},
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": ReturnIn.model_json_schema()}},
        }
    },
)
@answers(
    {
        400: [CoreCode.MALFORMED_BODY],  # a form body that cannot be parsed (any other is refused with 415)
        404: [Code.RENTAL_NOT_FOUND],
        409: [Code.ALREADY_RETURNED],
        422: [
            CoreCode.INVALID_DATETIME,
            CoreCode.INVALID_TYPE,
            CoreCode.OUT_OF_RANGE,
            Code.RETURN_BEFORE_RENT,
            Code.RETURN_IN_FUTURE,
        ],
    }
)
def rentals_return(request: HttpRequest, rental_id: Int64) -> Any:
    """Close the rental and store its charge (body optional: ``{"returned_at": ...}`` to backdate).
    409 ``already_returned`` the second time (charged once)."""
    payload = _optional_body(request)
    return services.rental_return(
        rental_id=rental_id, returned_at=payload.returned_at, by=current_user(request)
    )


@router.post("/returns", response={200: RentalOut, **ERR})
@answers(
    {
        # rental_not_found / already_returned: the copy's rental returned by another request between the lookup
        # and the row lock (tests/contract/answers.py RACE_ONLY)
        404: [Code.COPY_NOT_FOUND, Code.RENTAL_NOT_FOUND],
        409: [Code.ALREADY_RETURNED, Code.COPY_NOT_RENTED],
        422: [Code.RETURN_BEFORE_RENT, Code.RETURN_IN_FUTURE],
    }
)
def rentals_return_copy(request: HttpRequest, payload: ReturnCopyIn) -> Any:
    """Return by scanning the copy's barcode: closes the copy's open rental."""
    return services.rental_return_copy(
        barcode=payload.barcode, returned_at=payload.returned_at, by=current_user(request)
    )


@router.post("/rentals/{rental_id}/renew", response={200: RentalOut, **ERR})
@answers(
    {
        404: [Code.RENTAL_NOT_FOUND],
        409: [
            Code.RENEWAL_LIMIT_REACHED,
            Code.RENTAL_CLOSED,
            Code.RENTAL_OVERDUE,
            Code.TITLE_WAITED_FOR,
        ],
    }
)
def rentals_renew(request: HttpRequest, rental_id: Int64) -> Any:
    """Extend the due date by the loan period (limited; refused while another customer waits)."""
    services.rental_renew(rental_id=rental_id)
    return selectors.rental_get(rental_id=rental_id)
