"""Storefront's cached surface, declared once: the public store page, keyed by slug so the WSGI fast path and the
nginx edge resolve it from the URL. What it depends on (the shop and its products) is declared here too, so every
writer of those models invalidates it (bazaar.core.freshness): services, forms, the admin, commands, raw SQL."""

from __future__ import annotations

from typing import Any

from bazaar.core import cache, freshness, surfaces

PAGE_VARIANT = "html"
STORE_PATH = r"^/s/(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)/$"


def store_scope(slug: str) -> cache.Scope:
    return cache.Scope("storefront", "store", slug)


def _shop_scopes(shop: Any) -> list[cache.Scope]:
    return [store_scope(shop.slug)]


def _product_scopes(product: Any) -> list[cache.Scope]:
    return [store_scope(product.shop.slug)]


def declare() -> surfaces.Surface:
    """Called once from StorefrontConfig.ready()."""
    from bazaar.storefront import conf
    from bazaar.storefront.models import Product, Shop

    return surfaces.declare(
        "storefront.store_page",
        app="storefront",
        entity="store",
        path=STORE_PATH,
        shared=True,
        content_type=surfaces.HTML,
        depends_on={
            Shop: freshness.on(_shop_scopes, moves=("slug",)),
            Product: freshness.on(_product_scopes, moves=("shop",)),
        },
        resolve=lambda m, qs: None if qs else (store_scope(m["slug"]), PAGE_VARIANT),
        edge_path=lambda scope: f"/s/{scope.id}/",
        # With the cache disabled (a benchmark of the uncached page) the fast path must not serve entries that
        # another server put into the shared cache; the edge is purged either way.
        fast=conf.cache_enabled(),
    )


def store_surface() -> surfaces.Surface:
    return surfaces.get("storefront.store_page")


def invalidate_store(*slugs: str) -> None:
    """Drop the public page of each slug once the current transaction commits: for raw-SQL writers, which send
    no signals (ORM writes of shops and products are seen by the declared dependencies)."""
    cache.invalidate(*(store_scope(s) for s in dict.fromkeys(slugs)))
