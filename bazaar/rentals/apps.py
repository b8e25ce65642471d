from django.apps import AppConfig


class RentalsConfig(AppConfig):
    name = "bazaar.rentals"
    label = "rentals"
    verbose_name = "Rentals"

    def ready(self) -> None:
        from bazaar.core import fastpath, tasks
        from bazaar.rentals import cache, conf
        from bazaar.rentals.fast import fast_rent, fast_return

        # The desk's plain rent and return skip the framework (the same service calls; the rest goes to Django).
        fastpath.register_write("POST", r"^/api/rentals/rentals$", fast_rent)
        fastpath.register_write(
            "POST", r"^/api/rentals/rentals/(?P<rental_id>[0-9]{1,18})/return$", fast_return
        )
        # The catalogue's cached surfaces: fast-path routes, edge purges and model dependencies.
        cache.declare()
        tasks.periodic("rentals-reap-exports", task="rentals.reap_exports", every=60)
        tasks.periodic("rentals-reminders", task="rentals.send_reminders", every=conf.reminder_interval())
