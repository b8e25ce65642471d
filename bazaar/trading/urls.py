"""Trading pages (included at the site root, so every pattern carries its own prefix)."""

from django.urls import URLPattern, path

from bazaar.trading import views

app_name = "trading"

urlpatterns: list[URLPattern] = [
    path("trading/", views.trainer_list, name="trainers"),
]
