"""Trade offers as people make them: with a note and an expiry of the proposer's choosing, and counter-offers.

Both build on :func:`trades.offer_create` (who may propose, ownership checks), so the rules live in one place;
these functions add the fields around it in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from bazaar.core.errors import Conflict, PermissionDenied, ValidationFailed
from bazaar.trading.models import OfferState, TradeOffer
from bazaar.trading.services.common import may_act_for, with_retry
from bazaar.trading.services.trades import _close, _locked_open_offer, _not_open, offer_create

MESSAGE_MAX = 500
EXPIRY_DAYS = (1, 30)


def offer_propose(
    *,
    proposer: str,
    receiver: str,
    give: list[str],
    ask: list[str],
    message: str = "",
    expires_in_days: int | None = None,
    counter_to: TradeOffer | None = None,
    actor: Any = None,
) -> TradeOffer:
    """:func:`offer_create` plus an optional ``message`` (at most 500 characters: ValidationFailed
    ``message_too_long``) and ``expires_in_days`` (1-30, else ValidationFailed ``invalid_expiry``; None: the
    default TTL). Every error of offer_create too, and its locks."""
    message = (message or "").strip()
    if len(message) > MESSAGE_MAX:
        raise ValidationFailed(
            f"The message may be at most {MESSAGE_MAX} characters.",
            code="message_too_long",
            details={"max": MESSAGE_MAX},
        )
    low, high = EXPIRY_DAYS
    if expires_in_days is not None and not low <= expires_in_days <= high:
        raise ValidationFailed(
            f"An offer may stay open {low} to {high} days.",
            code="invalid_expiry",
            details={"min": low, "max": high},
        )

    def run() -> TradeOffer:
        with transaction.atomic():
            offer = offer_create(proposer=proposer, receiver=receiver, give=give, ask=ask, actor=actor)
            fields: dict[str, Any] = {"message": message, "counter_to": counter_to}
            if expires_in_days is not None:
                fields["expires_at"] = offer.created_at + dt.timedelta(days=expires_in_days)
            TradeOffer.objects.filter(pk=offer.pk).update(**fields)
            offer.refresh_from_db()
        return offer

    # The items' foreign-key checks run at this COMMIT: the trades' backstop (bazaar.trading.services.trades).
    return with_retry(run)


def offer_counter(
    *,
    offer_id: int,
    give: list[str],
    ask: list[str],
    message: str = "",
    expires_in_days: int | None = None,
    actor: Any = None,
) -> TradeOffer:
    """The receiver of an open offer answers it with a new offer the other way round (``give``: the receiver's
    pokemon, ``ask``: the proposer's), linked by ``counter_to``; the answered offer is declined ("countered by
    offer N"). One transaction: either both happen or neither. NotFound ``offer_not_found`` (also for a
    stranger); PermissionDenied ``not_your_offer`` for anyone but the receiver (or staff); Conflict
    ``offer_not_open``, ``offer_expired``; every error of :func:`offer_propose`. Locks the answered offer row."""
    with transaction.atomic():
        original = _locked_open_offer(offer_id, actor)
        if not may_act_for(actor, original.receiver):
            raise PermissionDenied("Only the receiving trainer may counter an offer.", code="not_your_offer")
        if original.state != OfferState.OPEN:
            raise _not_open(original, "counter")
        if original.expires_at <= timezone.now():
            raise Conflict("The offer has expired.", code="offer_expired")
        counter = offer_propose(
            proposer=original.receiver.public_id,
            receiver=original.proposer.public_id,
            give=give,
            ask=ask,
            message=message,
            expires_in_days=expires_in_days,
            counter_to=original,
            actor=actor,
        )
        _close(original, OfferState.DECLINED, f"countered by offer {counter.pk}")
    return counter
