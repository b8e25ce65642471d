"""Trading settings: typed accessors over ``django.conf.settings`` (parsed from the environment, with their
defaults, in ``bazaar/config/settings/base.py``). Read at call time, so tests can override them with ``settings``."""

from __future__ import annotations

import os

from django.conf import settings


def offer_ttl_seconds() -> int:
    """How long a trade offer stays open before it expires (default 7 days)."""
    return int(settings.TRADING_OFFER_TTL_SECONDS)


def import_max_bytes() -> int:
    """Largest CSV the import accepts (413 beyond it). Capped by MAX_UPLOAD_BYTES at the HTTP layer too."""
    return int(settings.TRADING_IMPORT_MAX_BYTES)


def import_async_bytes() -> int:
    """Uploads larger than this run as a Celery job (202 + job URL); smaller ones answer inline."""
    return int(settings.TRADING_IMPORT_ASYNC_BYTES)


def import_error_limit() -> int:
    """How many row errors an import reports in full (the total is always counted)."""
    return int(settings.TRADING_IMPORT_ERROR_LIMIT)


def exchange_retries() -> int:
    """How often an exchange/offer transaction is retried after a deadlock or serialization failure."""
    return int(settings.TRADING_EXCHANGE_RETRIES)


def import_dir() -> str:
    """Where uploaded files wait for the worker (must be shared with the Celery workers)."""
    return str(settings.TRADING_IMPORT_DIR or os.path.join(str(settings.MEDIA_ROOT), "imports"))


def page_size() -> int:
    """Trainers per page on the public /trading/ list."""
    return int(settings.TRADING_PAGE_SIZE)


def import_preview_rows() -> int:
    """How many rows an import preview lists one by one (new, changed, ownership changes); totals are always whole."""
    return int(settings.TRADING_IMPORT_PREVIEW_ROWS)
