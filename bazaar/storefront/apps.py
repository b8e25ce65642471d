from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    name = "bazaar.storefront"
    label = "storefront"
    verbose_name = "Storefront"

    def ready(self) -> None:
        from bazaar.core import edge, fastpath
        from bazaar.storefront import conf
        from bazaar.storefront.cache import PAGE_VARIANT, store_scope
        from bazaar.storefront.fast import fast_order

        # Plain public orders skip the framework (the same service call; anything unusual goes to Django).
        fastpath.register_write("POST", r"^/api/storefront/stores/(?P<slug>[^/]+)/orders$", fast_order)
        # The nginx edge caches the public page whether or not Bazaar's own cache is on: always purge it.
        edge.register("storefront", "store", lambda scope: [f"/s/{scope.id}/"])
        # With the cache disabled (a benchmark of the uncached page) the fast path must not serve entries that
        # another server put into the shared cache.
        if conf.cache_enabled():
            fastpath.register(
                r"^/s/(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)/$",
                lambda m, qs: None if qs else (store_scope(m["slug"]), PAGE_VARIANT),
                content_type="text/html; charset=utf-8",
            )
