from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "bazaar.trading"
    label = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        from bazaar.config.celery import app
        from bazaar.trading import cache

        # The trainer page and the JSON reads: fast-path route, edge purges and model dependencies.
        cache.declare()
        app.conf.beat_schedule["trading-expire-offers"] = {"task": "trading.expire_offers", "schedule": 60.0}
        app.conf.beat_schedule["trading-reap-import-jobs"] = {
            "task": "trading.reap_import_jobs",
            "schedule": 60.0,
        }
