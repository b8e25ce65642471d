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


def test_admin_shows_values_and_marks_deleted_and_expired_entries(make_user: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from bazaar.kvstore.models import Entry

    tenant = services.tenant_create(slug="acme")
    services.entry_set(tenant_id=tenant.pk, key="live-key", value={"shown": "yes"})
    services.entry_set(tenant_id=tenant.pk, key="gone-key", value=1)
    services.entry_delete(tenant_id=tenant.pk, key="gone-key")
    services.entry_set(tenant_id=tenant.pk, key="old-key", value=2, ttl=60)
    Entry.objects.filter(key="old-key").update(expires_at=timezone.now() - timedelta(seconds=1))
    client = Client()
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    page = client.get("/admin/kvstore/entry/").content.decode()
    assert "{&quot;shown&quot;:&quot;yes&quot;}" in page
    rows = {
        key: page[page.index(key) : page.index("</tr>", page.index(key))]
        for key in ("live-key", "gone-key", "old-key")
    }
    assert ">live<" in rows["live-key"]
    assert ">deleted<" in rows["gone-key"]
    assert ">expired<" in rows["old-key"]
    changes = client.get("/admin/kvstore/change/")
    assert changes.status_code == 200
    assert "gone-key" in changes.content.decode()


def test_openapi_lists_the_issue_16_endpoints(client: Client) -> None:
    paths = set(client.get("/api/openapi.json").json()["paths"])
    assert {"/api/kv/keys/{key}/history", "/api/kv/keys/{key}/incr", "/api/kv/txn", "/api/kv/watch"} <= paths


def test_the_openapi_document_has_no_duplicate_keys(client: Client) -> None:
    """Swagger UI's parser refuses a document with a key twice (a "200" from an int and a str response key)."""
    import json

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), keys
        return dict(pairs)

    json.loads(client.get("/api/openapi.json").content, object_pairs_hook=no_duplicates)
