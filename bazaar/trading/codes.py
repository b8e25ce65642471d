"""The error codes of the trading app (besides core's, ``bazaar.core.codes``).

Every code the app raises is one of these: ``tests/contract/test_api_errors.py`` scans the source.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    EMPTY_EXCHANGE = "empty_exchange"
    EMPTY_FILE = "empty_file"
    EXCHANGE_INVALID = "exchange_invalid"
    FILE_MISSING = "file_missing"
    IMPORT_CONFLICT = "import_conflict"
    IMPORT_INVALID = "import_invalid"
    IMPORT_STALE = "import_stale"
    IMPORT_TOO_LARGE = "import_too_large"
    INVALID_ENCODING = "invalid_encoding"
    INVALID_EXPIRY = "invalid_expiry"
    INVALID_ID = "invalid_id"
    INVALID_LEVEL = "invalid_level"
    INVALID_ORDER = "invalid_order"
    JOB_NOT_FOUND = "job_not_found"
    MESSAGE_TOO_LONG = "message_too_long"
    NOT_CSV = "not_csv"
    NOT_YOUR_OFFER = "not_your_offer"
    NOT_YOUR_TRAINER = "not_your_trainer"
    OFFER_EXPIRED = "offer_expired"
    OFFER_INVALID = "offer_invalid"
    OFFER_NOT_FOUND = "offer_not_found"
    OFFER_NOT_OPEN = "offer_not_open"
    POKEMON_EXISTS = "pokemon_exists"
    POKEMON_NOT_FOUND = "pokemon_not_found"
    PREVIEW_NOT_FOUND = "preview_not_found"
    PREVIEW_NOT_READY = "preview_not_ready"
    SELF_EXCHANGE = "self_exchange"
    STAFF_REQUIRED = "staff_required"
    TRAINER_EXISTS = "trainer_exists"
    TRAINER_HAS_POKEMON = "trainer_has_pokemon"
    TRAINER_NOT_FOUND = "trainer_not_found"
    UNKNOWN_USER = "unknown_user"
    USER_TAKEN = "user_taken"
    WORKER_LOST = "worker_lost"
    WRONG_COLUMNS = "wrong_columns"
