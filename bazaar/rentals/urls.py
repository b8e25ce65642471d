"""Rentals pages (the catalogue is public)."""

from django.urls import URLPattern, path

from bazaar.rentals import views

app_name = "rentals"

urlpatterns: list[URLPattern] = [
    path("rentals/", views.catalogue, name="catalogue"),
    path("rentals/titles/<int:title_id>/", views.title_detail, name="title"),
]
