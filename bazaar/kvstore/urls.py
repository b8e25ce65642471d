from django.urls import URLPattern

app_name = "kvstore"

urlpatterns: list[URLPattern] = []
