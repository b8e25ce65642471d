from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from bazaar.config.api import api, openapi_json
from bazaar.core import health, media, views

admin.site.site_header = "Bazaar back office"
admin.site.site_title = "Bazaar admin"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics_view, name="metrics"),
    path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", media.media, name="media"),
    path("api/openapi.json", openapi_json, name="openapi-json"),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    path("accounts/", include("bazaar.accounts.urls")),
    path("", include("bazaar.storefront.urls")),
    path("", include("bazaar.rentals.urls")),
    path("", include("bazaar.trading.urls")),
    path("", include("bazaar.kvstore.urls")),
]
