"""The admin pages load for staff, and the OpenAPI schema documents the kvstore endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from bazaar.kvstore import services

pytestmark = pytest.mark.django_db


def test_admin_pages_load(make_user: Any) -> None:
    tenant = services.tenant_create(slug="acme")
    services.apikey_create(tenant_id=tenant.pk)
    services.entry_set(tenant_id=tenant.pk, key="k", value=1)
    admin = make_user("boss", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    for path in ("/admin/kvstore/tenant/", "/admin/kvstore/tenantapikey/", "/admin/kvstore/entry/"):
        assert client.get(path).status_code == 200, path


def test_openapi_lists_the_endpoints(client: Client) -> None:
    schema = client.get("/api/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/api/kv/keys", "/api/kv/keys/{key}", "/api/kv/batch", "/api/kv/tenants"} <= paths
