"""Trading pages (included at the site root, so every pattern carries its own prefix)."""

from django.urls import URLPattern, path

from bazaar.trading import views
from bazaar.trading.pages import imports, offers, trainers

app_name = "trading"

urlpatterns: list[URLPattern] = [
    path("trading/", views.trainer_list, name="trainers"),
    path("trading/me/", trainers.my_pokemon, name="my_pokemon"),
    path("trading/trainers/<str:trainer_id>/", trainers.trainer_profile, name="trainer"),
    path("trading/trainers/<str:trainer_id>/offer/", offers.offer_new, name="offer_new"),
    path("trading/pokemon/<str:pokemon_id>/", trainers.pokemon_detail, name="pokemon"),
    path("trading/offers/", offers.offer_list, name="offers"),
    path("trading/offers/<int:offer_id>/", offers.offer_detail, name="offer"),
    path("trading/offers/<int:offer_id>/accept/", offers.offer_accept, name="offer_accept"),
    path("trading/offers/<int:offer_id>/decline/", offers.offer_decline, name="offer_decline"),
    path("trading/offers/<int:offer_id>/cancel/", offers.offer_cancel, name="offer_cancel"),
    path("trading/offers/<int:offer_id>/counter/", offers.offer_counter, name="offer_counter"),
    path("trading/exchange/", offers.exchange, name="exchange"),
    path("trading/import/", imports.upload, name="import"),
    path("trading/import/previews/<int:preview_id>/", imports.preview, name="import_preview"),
    path("trading/import/previews/<int:preview_id>/confirm/", imports.confirm, name="import_confirm"),
    path("trading/import/previews/<int:preview_id>/again/", imports.again, name="import_again"),
    path("trading/import/jobs/<int:job_id>/", imports.job, name="import_job"),
    path("trading/import/jobs/<int:job_id>/progress.json", imports.job_progress, name="import_job_progress"),
]
