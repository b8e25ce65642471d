"""The WSGI fast path for ``POST /api/storefront/stores/<slug>/orders``: the same service call as the API view.

Placing an order is a handful of statements; Django's request cycle and Ninja's parsing around them cost about
0.8 ms of CPU per order, a fifth of the whole request once the statements are cheap (bazaar.core.sql).
``bazaar.core.fastpath.register_write`` runs this handler inside ``fastpath.database`` (Django's connection upkeep).

It handles only the plain case and answers exactly what ``bazaar.storefront.api.store_order`` answers: a JSON
body with ``items`` (each ``product_id`` and ``quantity`` as integers, no ``unit_price``), ``customer_name``,
``phone`` and ``address`` as strings within the schema's lengths, and an ``Idempotency-Key`` header. Service
errors (404, 409, 422) are rendered in the API's error shape. Anything else returns None and Django handles
the request from the start (nothing was written).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import DatabaseError

from bazaar.core.errors import DomainError
from bazaar.core.fastpath import json_answer
from bazaar.core.schemas import text_limits
from bazaar.storefront import services
from bazaar.storefront.schemas import OrderIn, PublicOrderOut, placed_body

Answer = tuple[str, list[tuple[str, str]], bytes]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # NUL and other control characters: never the plain case
_FIELDS = frozenset(OrderIn.model_fields)
#: The schema's own limits (``OrderIn``): a longer value goes to Django, which answers its 422.
_LIMITS = text_limits(OrderIn, ("customer_name", "phone", "address"))


def _lines(items: Any) -> list[services.OrderLine] | None:
    if type(items) is not list or not items:
        return None
    lines = []
    for item in items:
        if type(item) is not dict or item.keys() != {"product_id", "quantity"}:
            return None
        pid, qty = item["product_id"], item["quantity"]
        if type(pid) is not int or type(qty) is not int or qty < 1:
            return None
        lines.append(services.OrderLine(pid, qty, None))
    return lines


def fast_order(match: re.Match[str], environ: dict[str, Any], body: bytes) -> Answer | None:
    """The fast-path handler for the public order endpoint (registered in StorefrontConfig.ready())."""
    key = environ.get("HTTP_IDEMPOTENCY_KEY", "")
    if environ.get("QUERY_STRING") or not key.strip():
        return None
    if not environ.get("CONTENT_TYPE", "").startswith("application/json"):
        return None
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep; Django answers 400 malformed_json
        return None
    if type(payload) is not dict or payload.keys() != _FIELDS:
        return None
    for field, limit in _LIMITS.items():
        value = payload[field]
        if type(value) is not str or len(value) > limit or _CONTROL.search(value):
            return None  # Django's schema answers it (422), nothing is written
    lines = _lines(payload["items"])
    if lines is None:
        return None
    try:
        placed = services.order_place(
            slug=match["slug"],
            lines=lines,
            customer_name=payload["customer_name"],
            phone=payload["phone"],
            address=payload["address"],
            idempotency_key=key,
        )
    except DomainError as exc:
        return json_answer(exc.status, exc.as_dict())
    except DatabaseError:
        return None  # Django answers (503 while the database is down); the transaction rolled back.
    out = PublicOrderOut.model_validate(placed_body(placed)).model_dump()
    return json_answer(201 if placed.created else 200, out)
