from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    name = "bazaar.storefront"
    label = "storefront"
    verbose_name = "Storefront"
