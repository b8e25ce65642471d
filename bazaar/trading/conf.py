"""Trading settings: ``getattr(settings, NAME, default)`` with an environment override, read at call time."""

from __future__ import annotations

import os

from django.conf import settings


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is not None and raw.strip():
        return int(raw)
    return int(getattr(settings, name, default))


def offer_ttl_seconds() -> int:
    """How long a trade offer stays open before it expires (default 7 days)."""
    return _int("TRADING_OFFER_TTL_SECONDS", 7 * 24 * 3600)


def import_max_bytes() -> int:
    """Largest CSV the import accepts (413 beyond it). Capped by MAX_UPLOAD_BYTES at the HTTP layer too."""
    return _int("TRADING_IMPORT_MAX_BYTES", 150 * 1024 * 1024)


def import_async_bytes() -> int:
    """Uploads larger than this run as a Celery job (202 + job URL); smaller ones answer inline."""
    return _int("TRADING_IMPORT_ASYNC_BYTES", 1024 * 1024)


def import_error_limit() -> int:
    """How many row errors an import reports in full (the total is always counted)."""
    return _int("TRADING_IMPORT_ERROR_LIMIT", 100)


def exchange_retries() -> int:
    """How often an exchange/offer transaction is retried after a deadlock or serialization failure."""
    return _int("TRADING_EXCHANGE_RETRIES", 1)


def import_dir() -> str:
    """Where uploaded files wait for the worker (must be shared with the Celery workers)."""
    default = os.path.join(str(settings.MEDIA_ROOT), "imports")
    return str(os.environ.get("TRADING_IMPORT_DIR") or getattr(settings, "TRADING_IMPORT_DIR", default))


def page_size() -> int:
    """Trainers per page on the public /trading/ list."""
    return _int("TRADING_PAGE_SIZE", 50)


def import_preview_rows() -> int:
    """How many rows an import preview lists one by one (new, changed, ownership changes); totals are always whole."""
    return _int("TRADING_IMPORT_PREVIEW_ROWS", 100_000)
