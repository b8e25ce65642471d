from django.apps import AppConfig


class RentalsConfig(AppConfig):
    name = "bazaar.rentals"
    label = "rentals"
    verbose_name = "Rentals"

    def ready(self) -> None:
        from bazaar.config.celery import app
        from bazaar.core import edge, fastpath
        from bazaar.rentals import cache, conf
        from bazaar.rentals.fast import fast_rent, fast_return

        # The desk's plain rent and return skip the framework (the same service calls; the rest goes to Django).
        fastpath.register_write("POST", r"^/api/rentals/rentals$", fast_rent)
        fastpath.register_write(
            "POST", r"^/api/rentals/rentals/(?P<rental_id>[0-9]{1,18})/return$", fast_return
        )
        # Anonymous catalogue reads are answered from stored bytes before Django (same entries as the views).
        fastpath.register(
            r"^/rentals/$",
            lambda m, qs: None if qs else (cache.CATALOGUE, cache.list_variant("html", None, 0, 0)),
            content_type=cache.HTML,
        )
        fastpath.register(
            r"^/rentals/titles/(?P<id>[0-9]{1,18})/$",
            lambda m, qs: None if qs else (cache.title_scope(int(m["id"])), "html"),
            content_type=cache.HTML,
        )
        fastpath.register(
            r"^/api/rentals/titles$",
            lambda m, qs: None if qs else (cache.CATALOGUE, cache.default_json_variant()),
            content_type=cache.JSON,
        )
        fastpath.register(
            r"^/api/rentals/titles/(?P<id>[0-9]{1,18})$",
            lambda m, qs: None if qs else (cache.title_scope(int(m["id"])), "json"),
            content_type=cache.JSON,
        )
        # The same pages are cached by the nginx edge: purge them when their scope is invalidated.
        edge.register(cache.APP, "catalogue", lambda scope: ["/rentals/", "/api/rentals/titles"])
        edge.register(
            cache.APP,
            "title",
            lambda scope: [f"/rentals/titles/{scope.id}/", f"/api/rentals/titles/{scope.id}"],
        )
        app.conf.beat_schedule["rentals-reap-exports"] = {"task": "rentals.reap_exports", "schedule": 60.0}
        app.conf.beat_schedule["rentals-reminders"] = {
            "task": "rentals.send_reminders",
            "schedule": float(conf.reminder_interval()),
        }
