"""The error codes core itself answers with (the API's own refusals and the shared input rules).

Every app keeps one registry like this (``bazaar/<app>/codes.py``); ``test_api_errors`` scans the source for
string-literal codes outside them. Each operation declares the codes it can answer beside its route
(``answers`` below); the OpenAPI document lists them per operation and status as an enum (``bazaar.config.openapi``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class CoreCode(StrEnum):
    BAD_REQUEST = "bad_request"
    MALFORMED_JSON = "malformed_json"
    MALFORMED_BODY = "malformed_body"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    CSRF_FAILED = "csrf_failed"
    STAFF_REQUIRED = "staff_required"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    CONFLICT_RETRY = "conflict_retry"
    PRECONDITION_FAILED = "precondition_failed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    VALIDATION_ERROR = "validation_error"
    INVALID_TEXT = "invalid_text"
    INVALID_DATETIME = "invalid_datetime"
    INVALID_TYPE = "invalid_type"
    OUT_OF_RANGE = "out_of_range"
    INVALID_LIMIT = "invalid_limit"
    INVALID_OFFSET = "invalid_offset"
    INVALID_CURSOR = "invalid_cursor"
    OFFSET_TOO_DEEP = "offset_too_deep"
    CURSOR_WITH_OFFSET = "cursor_with_offset"
    RATE_LIMITED = "rate_limited"
    SERVICE_UNAVAILABLE = "service_unavailable"
    DATABASE_UNAVAILABLE = "database_unavailable"


_ANSWERS = "_bazaar_answers"


def answers(codes: Mapping[int, Iterable[str]]) -> Callable[[F], F]:
    """Declare, beside an operation's route, the codes of *its app* (and core's ``not_found``-like answers) that
    it can answer, by status: ``@answers({404: [Code.KEY_NOT_FOUND], 409: [Code.VERSION_CONFLICT]})``.

    What core's machinery answers for every operation of a shape (401 from the auth, 400/413/415 from the body,
    the shared input rules' 422 codes, 503) is derived by ``bazaar.config.openapi`` and not repeated here. The
    OpenAPI document lists the union per status as an enum; the test run holds both sides to the truth
    (``tests/contract/test_error_codes.py``): every code answered is declared, every code declared is answered.
    """
    frozen = {int(status): frozenset(str(c) for c in cs) for status, cs in codes.items()}

    def mark(view: F) -> F:
        setattr(view, _ANSWERS, frozen)
        return view

    return mark


def declared_answers(view: Callable[..., Any]) -> dict[int, frozenset[str]]:
    """What ``@answers`` declared on ``view`` (empty when nothing was)."""
    return dict(getattr(view, _ANSWERS, {}))
