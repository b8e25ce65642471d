from django.apps import AppConfig


class RentalsConfig(AppConfig):
    name = "bazaar.rentals"
    label = "rentals"
    verbose_name = "Rentals"

    def ready(self) -> None:
        from bazaar.config.celery import app
        from bazaar.core import fastpath
        from bazaar.rentals import cache, conf
        from bazaar.rentals.fast import fast_rent, fast_return

        # The desk's plain rent and return skip the framework (the same service calls; the rest goes to Django).
        fastpath.register_write("POST", r"^/api/rentals/rentals$", fast_rent)
        fastpath.register_write(
            "POST", r"^/api/rentals/rentals/(?P<rental_id>[0-9]{1,18})/return$", fast_return
        )
        # The catalogue's cached surfaces: fast-path routes, edge purges and model dependencies.
        cache.declare()
        app.conf.beat_schedule["rentals-reap-exports"] = {"task": "rentals.reap_exports", "schedule": 60.0}
        app.conf.beat_schedule["rentals-reminders"] = {
            "task": "rentals.send_reminders",
            "schedule": float(conf.reminder_interval()),
        }
