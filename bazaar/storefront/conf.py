"""Storefront settings: typed accessors over ``django.conf.settings`` (parsed from the environment, with their
defaults, in ``bazaar/config/settings/base.py``). Read at call time, so tests can override them with ``settings``."""

from __future__ import annotations

from django.conf import settings


def cache_enabled() -> bool:
    """STOREFRONT_CACHE_ENABLED (default true). False only to measure the uncached page."""
    return bool(settings.STOREFRONT_CACHE_ENABLED)


def page_ttl() -> int:
    """STOREFRONT_PAGE_TTL seconds (default 900): the time backstop behind event invalidation."""
    return int(settings.STOREFRONT_PAGE_TTL)


def low_stock_threshold() -> int:
    """STOREFRONT_LOW_STOCK (default 5): products at or below this stock are flagged on the dashboard."""
    return int(settings.STOREFRONT_LOW_STOCK)


def max_order_lines() -> int:
    """STOREFRONT_MAX_ORDER_LINES (default 50)."""
    return int(settings.STOREFRONT_MAX_ORDER_LINES)


def max_quantity() -> int:
    """STOREFRONT_MAX_QUANTITY per line (default 1000)."""
    return int(settings.STOREFRONT_MAX_QUANTITY)


def max_image_bytes() -> int:
    """settings.IMAGE_UPLOAD_MAX_BYTES (env IMAGE_UPLOAD_MAX_BYTES, default 5 MiB): one limit for the form's text,
    the service's check and the body limit of the upload pages."""
    return int(settings.IMAGE_UPLOAD_MAX_BYTES)
