from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "bazaar.trading"
    label = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        from urllib.parse import parse_qs

        from bazaar.config.celery import app
        from bazaar.core import edge, fastpath
        from bazaar.trading import cache as tcache
        from bazaar.trading.views import page_number

        def resolve(match: object, qs: str) -> tuple[object, str] | None:
            params = parse_qs(qs, keep_blank_values=True)
            if set(params) - {"page"} or len(params.get("page", [""])) > 1:
                return None  # unusual query: let Django answer it
            page = page_number(params.get("page", [""])[0])
            if page is None:
                return None
            return tcache.TRAINERS, tcache.PAGE_VARIANT.format(page=page)

        fastpath.register(r"^/trading/$", resolve, content_type="text/html; charset=utf-8")  # type: ignore[arg-type]
        # The nginx edge caches the first page (no query string): purge it with the trainers scope.
        edge.register(tcache.TRAINERS.app, tcache.TRAINERS.entity, lambda scope: ["/trading/"])
        app.conf.beat_schedule["trading-expire-offers"] = {"task": "trading.expire_offers", "schedule": 60.0}
        app.conf.beat_schedule["trading-reap-import-jobs"] = {
            "task": "trading.reap_import_jobs",
            "schedule": 60.0,
        }
