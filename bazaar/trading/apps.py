from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "bazaar.trading"
    label = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        from bazaar.core import middleware, tasks
        from bazaar.trading import cache

        # The trainer page and the JSON reads: fast-path route, edge purges and model dependencies.
        cache.declare()
        middleware.allow_uploads("/api/trading/import", "/trading/import")  # the CSV import (API and wizard)
        tasks.periodic("trading-expire-offers", task="trading.expire_offers", every=60)
        tasks.periodic("trading-reap-import-jobs", task="trading.reap_import_jobs", every=60)
