from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    name = "bazaar.storefront"
    label = "storefront"
    verbose_name = "Storefront"

    def ready(self) -> None:
        from bazaar.core import fastpath, middleware
        from bazaar.storefront import cache
        from bazaar.storefront.fast import fast_order

        # Plain public orders skip the framework (the same service call; anything unusual goes to Django).
        fastpath.register_write("POST", r"^/api/storefront/stores/(?P<slug>[^/]+)/orders$", fast_order)
        # The public store page: its fast-path route, edge purges and model dependencies come from here.
        cache.declare()
        # Product photos: bigger than an ordinary form body (the limit is stated on the form), in the vendor's form
        # and in the admin's product page alike.
        middleware.allow_images("/storefront/products/", "/admin/storefront/product/")
