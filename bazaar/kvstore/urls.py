from django.urls import path

from bazaar.kvstore import views

app_name = "kvstore"

# The KV console. A key travels in the query string (``?key=``): keys may hold "/" and any other character.
urlpatterns = [
    path("kv/", views.tenants, name="tenants"),
    path("kv/t/<slug:tenant_slug>/", views.browse, name="browse"),
    path("kv/t/<slug:tenant_slug>/entry/", views.entry, name="entry"),
    path("kv/t/<slug:tenant_slug>/edit/", views.edit, name="edit"),
    path("kv/t/<slug:tenant_slug>/delete/", views.delete, name="delete"),
    path("kv/t/<slug:tenant_slug>/history/", views.history, name="history"),
    path("kv/t/<slug:tenant_slug>/watch/", views.watch_page, name="watch"),
    path("kv/t/<slug:tenant_slug>/watch.json", views.watch_json, name="watch-json"),
    path("kv/t/<slug:tenant_slug>/apikeys/", views.apikeys, name="apikeys"),
    path("kv/t/<slug:tenant_slug>/apikeys/<int:key_id>/revoke/", views.apikey_revoke, name="apikey-revoke"),
    path("kv/t/<slug:tenant_slug>/members/", views.members, name="members"),
    path("kv/t/<slug:tenant_slug>/members/<int:member_id>/role/", views.member_role, name="member-role"),
    path(
        "kv/t/<slug:tenant_slug>/members/<int:member_id>/remove/", views.member_remove, name="member-remove"
    ),
]
