"""Storefront cache scopes. The store page is keyed by slug so the WSGI fast path resolves it from the URL."""

from __future__ import annotations

from bazaar.core import cache

PAGE_VARIANT = "html"
JSON_VARIANT = "json"


def store_scope(slug: str) -> cache.Scope:
    return cache.Scope("storefront", "store", slug)


def invalidate_store(*slugs: str) -> None:
    """Drop the cached public page (HTML and JSON) of each slug once the current transaction commits."""
    cache.invalidate(*(store_scope(s) for s in dict.fromkeys(slugs)))
