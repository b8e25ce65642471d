"""The WSGI fast path for the desk's two hot writes: ``POST /api/rentals/rentals`` (rent a title) and
``POST /api/rentals/rentals/<id>/return`` (return now) — the same service calls as the API views.

A rent or a return is a handful of statements (bazaar.core.sql); Django's request cycle and Ninja's parsing and
rendering around them are a large share of the rest. ``bazaar.core.fastpath.register_write`` runs these handlers
inside Django's request signals.

Only the plain case, answered exactly as ``bazaar.rentals.api.desk`` answers it: a staff user's bearer token
(a session goes to Django, which checks CSRF); rent with a JSON body of exactly integer ``customer_id`` and
``title_id``; return with an empty body (no backdating). Service errors are rendered in the API's error shape.
Anything else returns None and Django handles the request from the start (nothing was written).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import DatabaseError

from bazaar.accounts.models import User
from bazaar.accounts.services import token_authenticate
from bazaar.core.errors import DomainError
from bazaar.core.fastpath import json_answer
from bazaar.rentals import services
from bazaar.rentals.models import Rental
from bazaar.rentals.schemas import rental_out

Answer = tuple[str, list[tuple[str, str]], bytes]


def _staff(environ: dict[str, Any]) -> User | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if environ.get("QUERY_STRING") or not auth.startswith("Bearer "):
        return None
    user = token_authenticate(auth[7:])
    return user if user is not None and user.is_staff else None


def _answer(status: int, rental: Rental) -> Answer:
    return json_answer(status, rental_out(rental))


def fast_rent(match: re.Match[str], environ: dict[str, Any], body: bytes) -> Answer | None:
    """Rent a free copy of a title (registered in RentalsConfig.ready())."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/json"):
        return None
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if (
        type(payload) is not dict
        or payload.keys() != {"customer_id", "title_id"}
        or type(payload["customer_id"]) is not int
        or type(payload["title_id"]) is not int
    ):
        return None
    try:
        user = _staff(environ)
        if user is None:
            return None
        rental = services.rental_rent(
            customer_id=payload["customer_id"], title_id=payload["title_id"], by=user
        )
    except DomainError as exc:
        return json_answer(exc.status, exc.as_dict())
    except DatabaseError:
        return None  # Django answers (503 while the database is down); the transaction rolled back.
    return _answer(201, rental)


def fast_return(match: re.Match[str], environ: dict[str, Any], body: bytes) -> Answer | None:
    """Return a rental now (registered in RentalsConfig.ready())."""
    if body.strip():
        return None  # a backdated return (or anything else in the body): Django parses it
    try:
        user = _staff(environ)
        if user is None:
            return None
        rental = services.rental_return(rental_id=int(match["rental_id"]), by=user)
    except DomainError as exc:
        return json_answer(exc.status, exc.as_dict())
    except DatabaseError:
        return None
    return _answer(200, rental)
