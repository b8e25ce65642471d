from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "bazaar.trading"
    label = "trading"
    verbose_name = "Trading"
