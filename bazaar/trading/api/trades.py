"""Direct exchanges (staff) and trade offers (trainers act for themselves; staff for anyone)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from bazaar.accounts.auth import current_user, user_auth
from bazaar.core.codes import CoreCode, answers
from bazaar.core.schemas import Int64, Line, Offset
from bazaar.trading import selectors, services
from bazaar.trading.api.catalog import ERRORS
from bazaar.trading.codes import Code
from bazaar.trading.schemas import CounterIn, ExchangeIn, ExchangeOut, OfferIn, OfferOut, OfferPage

router = Router()


@router.post(
    "/exchange", response={200: ExchangeOut, **ERRORS}, auth=user_auth, summary="Atomic exchange (staff)"
)
@answers(
    {
        403: [Code.STAFF_REQUIRED],
        404: [Code.TRAINER_NOT_FOUND],
        409: [Code.EXCHANGE_INVALID, Code.SELF_EXCHANGE],
        422: [Code.EMPTY_EXCHANGE],
    }
)
def exchange(request: HttpRequest, payload: ExchangeIn) -> Any:
    """Swap pokemon between two trainers in one transaction; 409 lists each pokemon that blocks it and why."""
    return services.exchange(
        trainer_a=payload.trainer_a,
        trainer_b=payload.trainer_b,
        a_gives=payload.a_gives,
        b_gives=payload.b_gives,
        actor=current_user(request),
    )


@router.get("/offers", response={200: OfferPage, **ERRORS}, auth=user_auth)
@answers({422: [CoreCode.INVALID_LIMIT]})
def offer_list(
    request: HttpRequest,
    trainer: Line | None = None,
    state: Line | None = None,
    limit: Int64 | None = None,
    offset: Offset | None = None,
) -> dict[str, Any]:
    """The offers of your trainer (either side), newest first; staff see every offer."""
    return selectors.offer_page(
        trainer=trainer, state=state, limit=limit, offset=offset, viewer=current_user(request)
    )


@router.post("/offers", response={201: OfferOut, **ERRORS}, auth=user_auth, summary="Propose a trade")
@answers(
    {
        403: [Code.NOT_YOUR_TRAINER],
        404: [Code.TRAINER_NOT_FOUND],
        409: [Code.EXCHANGE_INVALID, Code.SELF_EXCHANGE],
        422: [Code.EMPTY_EXCHANGE, Code.INVALID_EXPIRY, Code.MESSAGE_TOO_LONG],
    }
)
def offer_create(request: HttpRequest, payload: OfferIn) -> Any:
    """Offer your pokemon (``give``) for the receiver's (``ask``), with an optional message and expiry."""
    offer = services.offer_propose(
        proposer=payload.proposer,
        receiver=payload.receiver,
        give=payload.give,
        ask=payload.ask,
        message=payload.message,
        expires_in_days=payload.expires_in_days,
        actor=current_user(request),
    )
    return Status(201, selectors.offer_dict(selectors.offer_get(offer.pk, current_user(request))))


@router.post(
    "/offers/{offer_id}/counter", response={201: OfferOut, **ERRORS}, auth=user_auth, summary="Counter-offer"
)
@answers(
    {
        403: [Code.NOT_YOUR_OFFER],
        404: [Code.OFFER_NOT_FOUND],
        409: [Code.EXCHANGE_INVALID, Code.OFFER_EXPIRED, Code.OFFER_NOT_OPEN],
        422: [Code.EMPTY_EXCHANGE, Code.INVALID_EXPIRY, Code.MESSAGE_TOO_LONG],
    }
)
def offer_counter(request: HttpRequest, offer_id: int, payload: CounterIn) -> Any:
    """The receiver answers an open offer with a new one the other way round (``counter_to`` links them); the
    answered offer is declined. 409 offer_not_open / offer_expired / exchange_invalid."""
    offer = services.offer_counter(
        offer_id=offer_id,
        give=payload.give,
        ask=payload.ask,
        message=payload.message,
        expires_in_days=payload.expires_in_days,
        actor=current_user(request),
    )
    return Status(201, selectors.offer_dict(selectors.offer_get(offer.pk, current_user(request))))


@router.get("/offers/{offer_id}", response={200: OfferOut, **ERRORS}, auth=user_auth)
@answers({404: [Code.OFFER_NOT_FOUND]})
def offer_get(request: HttpRequest, offer_id: Int64) -> dict[str, Any]:
    """One offer: its two trainers and staff only (404 offer_not_found for anyone else)."""
    return selectors.offer_dict(selectors.offer_get(offer_id, current_user(request)))


@router.post("/offers/{offer_id}/accept", response={200: OfferOut, **ERRORS}, auth=user_auth)
@answers(
    {
        403: [Code.NOT_YOUR_OFFER],
        404: [Code.OFFER_NOT_FOUND],
        409: [Code.OFFER_EXPIRED, Code.OFFER_INVALID, Code.OFFER_NOT_OPEN],
    }
)
def offer_accept(request: HttpRequest, offer_id: Int64) -> dict[str, Any]:
    """Receiver (or staff) only. 409 offer_expired / offer_invalid (the offer is closed then) / offer_not_open."""
    services.offer_accept(offer_id=offer_id, actor=current_user(request))
    return selectors.offer_dict(selectors.offer_get(offer_id, current_user(request)))


@router.post("/offers/{offer_id}/decline", response={200: OfferOut, **ERRORS}, auth=user_auth)
@answers({403: [Code.NOT_YOUR_OFFER], 404: [Code.OFFER_NOT_FOUND], 409: [Code.OFFER_NOT_OPEN]})
def offer_decline(request: HttpRequest, offer_id: Int64) -> dict[str, Any]:
    services.offer_decline(offer_id=offer_id, actor=current_user(request))
    return selectors.offer_dict(selectors.offer_get(offer_id, current_user(request)))


@router.post("/offers/{offer_id}/cancel", response={200: OfferOut, **ERRORS}, auth=user_auth)
@answers({403: [Code.NOT_YOUR_OFFER], 404: [Code.OFFER_NOT_FOUND], 409: [Code.OFFER_NOT_OPEN]})
def offer_cancel(request: HttpRequest, offer_id: Int64) -> dict[str, Any]:
    services.offer_cancel(offer_id=offer_id, actor=current_user(request))
    return selectors.offer_dict(selectors.offer_get(offer_id, current_user(request)))
