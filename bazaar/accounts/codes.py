"""The error codes of the accounts app (besides core's, ``bazaar.core.codes``).

Every code the app raises is one of these: ``tests/contract/test_api_errors.py`` scans the source.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    INVALID_CREDENTIALS = "invalid_credentials"
    LOGIN_THROTTLED = "login_throttled"
    TOKEN_NOT_FOUND = "token_not_found"
    USERNAME_TAKEN = "username_taken"
