"""Rentals pages: the public catalogue, and the desk (staff only)."""

from django.urls import URLPattern, path

from bazaar.rentals import views

app_name = "rentals"

urlpatterns: list[URLPattern] = [
    path("rentals/", views.catalogue, name="catalogue"),
    path("rentals/titles/<int:title_id>/", views.title_detail, name="title"),
    path("rentals/desk/", views.desk, name="desk"),
    path("rentals/desk/rent/", views.desk_rent, name="desk_rent"),
    path("rentals/desk/return/", views.desk_return, name="desk_return"),
]
