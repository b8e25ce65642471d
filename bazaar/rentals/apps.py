from django.apps import AppConfig


class RentalsConfig(AppConfig):
    name = "bazaar.rentals"
    label = "rentals"
    verbose_name = "Rentals"
