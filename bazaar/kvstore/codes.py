"""The error codes of the kvstore app (besides core's, ``bazaar.core.codes``).

Every code the app raises is one of these: ``tests/contract/test_api_errors.py`` scans the source.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    BATCH_TOO_LARGE = "batch_too_large"
    CONNECTION_FAILED = "connection_failed"
    COUNTER_OVERFLOW = "counter_overflow"
    DUPLICATE_KEY = "duplicate_key"
    EMPTY_BATCH = "empty_batch"
    HTTP_ERROR = "http_error"
    INVALID_API_KEY = "invalid_api_key"
    INVALID_COMPARE = "invalid_compare"
    INVALID_ENCODING = "invalid_encoding"
    INVALID_IF_VERSION = "invalid_if_version"
    INVALID_INCREMENT = "invalid_increment"
    INVALID_KEY = "invalid_key"
    INVALID_NAME = "invalid_name"
    INVALID_OP = "invalid_op"
    INVALID_RECORD = "invalid_record"
    INVALID_RETENTION = "invalid_retention"
    INVALID_REVISION = "invalid_revision"
    INVALID_ROLE = "invalid_role"
    INVALID_SLUG = "invalid_slug"
    INVALID_TTL = "invalid_ttl"
    INVALID_VALUE = "invalid_value"
    INVALID_WAIT = "invalid_wait"
    KEY_EXISTS = "key_exists"
    KEY_NOT_FOUND = "key_not_found"
    LAST_ADMIN = "last_admin"
    MEMBER_EXISTS = "member_exists"
    MEMBER_NOT_FOUND = "member_not_found"
    MISSING_VALUE = "missing_value"
    NOT_A_NUMBER = "not_a_number"
    REVISION_COMPACTED = "revision_compacted"
    ROLE_REQUIRED = "role_required"
    TENANT_EXISTS = "tenant_exists"
    TENANT_NOT_FOUND = "tenant_not_found"
    TOO_MANY_OPS = "too_many_ops"
    USER_AMBIGUOUS = "user_ambiguous"
    USER_NOT_FOUND = "user_not_found"
    VALUE_TOO_LARGE = "value_too_large"
    VERSION_CONFLICT = "version_conflict"
    WATCH_BUSY = "watch_busy"
