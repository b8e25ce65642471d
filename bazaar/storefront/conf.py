"""Storefront settings: ``settings.STOREFRONT_X`` if set, else the environment variable of the same name."""

from __future__ import annotations

import os

from django.conf import settings


def _get(name: str, default: str) -> str:
    value = getattr(settings, name, None)
    if value is not None:
        return str(value)
    return os.environ.get(name, default)


def cache_enabled() -> bool:
    """STOREFRONT_CACHE_ENABLED (default true). False only to measure the uncached page."""
    return _get("STOREFRONT_CACHE_ENABLED", "true").strip().lower() not in {"0", "false", "no", "off"}


def page_ttl() -> int:
    """STOREFRONT_PAGE_TTL seconds (default 900): the time backstop behind event invalidation."""
    return int(_get("STOREFRONT_PAGE_TTL", "900"))


def low_stock_threshold() -> int:
    """STOREFRONT_LOW_STOCK (default 5): products at or below this stock are flagged on the dashboard."""
    return int(_get("STOREFRONT_LOW_STOCK", "5"))


def max_order_lines() -> int:
    """STOREFRONT_MAX_ORDER_LINES (default 50)."""
    return int(_get("STOREFRONT_MAX_ORDER_LINES", "50"))


def max_quantity() -> int:
    """STOREFRONT_MAX_QUANTITY per line (default 1000)."""
    return int(_get("STOREFRONT_MAX_QUANTITY", "1000"))


def max_image_bytes() -> int:
    """settings.IMAGE_UPLOAD_MAX_BYTES (env IMAGE_UPLOAD_MAX_BYTES, default 5 MiB): one limit for the form's text,
    the service's check and the body limit of the upload pages."""
    return int(settings.IMAGE_UPLOAD_MAX_BYTES)
