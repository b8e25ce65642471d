from django.urls import URLPattern

app_name = "storefront"

urlpatterns: list[URLPattern] = []
