"""Input rules shared by every write path (API, batch, CLI, import): key shape, value size, TTL range."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from bazaar.core.errors import PayloadTooLarge, ValidationFailed
from bazaar.kvstore import conf

#: Unicode's control characters (general category Cc) are exactly U+0000-U+001F and U+007F-U+009F; one regex
#: search instead of a category lookup per character (an import validates a million keys).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: Built once: ``json.dumps`` with options builds a new encoder on every call.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class Limits(NamedTuple):
    """The input limits (KVSTORE_MAX_KEY_LENGTH, KVSTORE_MAX_VALUE_BYTES, KVSTORE_MAX_TTL), read once: an import
    checks a million records against the same limits (reading the settings costs more than a key's check)."""

    key_length: int
    value_bytes: int
    ttl: int

    @classmethod
    def current(cls) -> Limits:
        return cls(conf.max_key_length(), conf.max_value_bytes(), conf.max_ttl())


def clean_key(key: Any, limits: Limits | None = None) -> str:
    """A key is a non-empty UTF-8 string of at most KVSTORE_MAX_KEY_LENGTH characters without control characters.

    Raises ValidationFailed (code ``invalid_key``).
    """
    if not isinstance(key, str) or not key:
        raise ValidationFailed("A key must be a non-empty string.", code="invalid_key")
    limit = conf.max_key_length() if limits is None else limits.key_length
    if len(key) > limit:
        raise ValidationFailed(
            f"A key is at most {limit} characters.", code="invalid_key", details={"max_length": limit}
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationFailed("A key must be valid UTF-8.", code="invalid_key")
    if _CONTROL.search(key):
        raise ValidationFailed("A key must not contain control characters.", code="invalid_key")
    return key


def encode_value(value: Any, limits: Limits | None = None) -> str:
    """The value as compact JSON text, within KVSTORE_MAX_VALUE_BYTES (UTF-8).

    Raises PayloadTooLarge (``value_too_large``, 413) beyond the limit, ValidationFailed (``invalid_value``) for
    what JSON cannot carry (NaN, infinities).
    """
    try:
        text = _COMPACT.encode(value)
    except (ValueError, TypeError):
        raise ValidationFailed("The value must be JSON (no NaN or Infinity).", code="invalid_value")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800" in the JSON): no UTF-8 text can hold it
        raise ValidationFailed(  # the code and message the API's text rule gives (core.schemas.text_problem)
            f"Text must not contain a lone surrogate (U+{ord(text[exc.start]):04X}).", code="invalid_text"
        )
    limit = conf.max_value_bytes() if limits is None else limits.value_bytes
    if size > limit:
        raise PayloadTooLarge(
            f"The value is {size} bytes as JSON; the limit is {limit} bytes.",
            code="value_too_large",
            details={"limit": limit, "size": size},
        )
    return text


def expiry(ttl: Any, now: datetime, limits: Limits | None = None) -> datetime | None:
    """``now + ttl`` seconds, or None without a TTL. Raises ValidationFailed (``invalid_ttl``) out of range."""
    if ttl is None:
        return None
    limit = conf.max_ttl() if limits is None else limits.ttl
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1 or ttl > limit:
        raise ValidationFailed(
            f"ttl must be a whole number of seconds between 1 and {limit}.",
            code="invalid_ttl",
            details={"max_ttl": limit},
        )
    return now + timedelta(seconds=ttl)


def clean_if_version(if_version: Any) -> int | None:
    if if_version is None:
        return None
    if isinstance(if_version, bool) or not isinstance(if_version, int) or if_version < 0:
        raise ValidationFailed("if_version must be a whole number, 0 or more.", code="invalid_if_version")
    return int(if_version)
