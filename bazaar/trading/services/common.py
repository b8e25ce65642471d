"""Helpers shared by the trading services: id rules, permissions, deadlock retry."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import DatabaseError, connection

from bazaar.core.errors import Conflict, PermissionDenied, ValidationFailed
from bazaar.trading import conf
from bazaar.trading.models import Trainer

T = TypeVar("T")

PUBLIC_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

# PostgreSQL: deadlock_detected, serialization_failure, lock_not_available.
_RETRYABLE_SQLSTATES = {"40P01", "40001", "55P03"}


def check_public_id(value: str, field: str = "id") -> str:
    value = (value or "").strip()
    if not PUBLIC_ID_RE.match(value):
        raise ValidationFailed(
            f"{field} must be 1-64 letters, digits, '_', '.' or '-'.",
            code="invalid_id",
            details={"field": field, "value": value[:80]},
        )
    return value


def may_act_for(actor: Any, trainer: Trainer) -> bool:
    """Staff (and internal callers passing no actor) act for anyone; a user acts for the trainer linked to them."""
    if actor is None or getattr(actor, "is_staff", False):
        return True
    return trainer.user_id is not None and trainer.user_id == getattr(actor, "pk", None)


def may_see_offer(actor: Any, offer: Any) -> bool:
    """Staff (and internal callers) see every offer; a user sees the offers of the trainer linked to them."""
    if actor is None or getattr(actor, "is_staff", False):
        return True
    uid = getattr(actor, "pk", None)
    return uid is not None and uid in (offer.proposer.user_id, offer.receiver.user_id)


def require_staff(actor: Any) -> None:
    if actor is not None and not getattr(actor, "is_staff", False):
        raise PermissionDenied("Only staff may do this.", code="staff_required")


def _retryable(exc: DatabaseError) -> bool:
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) in _RETRYABLE_SQLSTATES:
        return True
    return connection.vendor == "sqlite" and "locked" in str(exc).lower()


def with_retry(fn: Callable[[], T]) -> T:
    """Run ``fn`` (which opens its own transaction) and retry it after a deadlock or lock timeout.

    Rows are always locked in primary-key order, so deadlocks should not happen; this is the backstop that turns
    one that does (or a lock wait the database gave up on) into a retry and finally a clean 409 ``conflict_retry``,
    never a 500 or 503. Inside an outer transaction a retry is impossible (the outer one is aborted), so it fails at once.
    """
    attempts = conf.exchange_retries() + 1
    for attempt in range(attempts):
        try:
            return fn()
        except DatabaseError as exc:
            if not _retryable(exc):
                raise
            if connection.in_atomic_block or attempt == attempts - 1:
                raise Conflict(
                    "The pokemon involved are busy in another change; try again.", code="conflict_retry"
                ) from exc
            time.sleep(0.01 * (2**attempt))
    raise AssertionError("unreachable")
