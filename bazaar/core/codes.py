"""The error codes core itself answers with (the API's own refusals and the shared input rules).

Every app keeps one registry like this (``bazaar/<app>/codes.py``); ``test_api_errors`` scans the source for
string-literal codes outside them, and the OpenAPI document lists each app's codes as an enum
(``bazaar.config.openapi``).
"""

from __future__ import annotations

from enum import StrEnum


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
