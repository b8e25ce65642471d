"""Kvstore fixtures: two tenants with an API key each, and a client that speaks the tenant API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from bazaar.kvstore import services
from bazaar.kvstore.models import Tenant


@dataclass
class KV:
    """A tenant and a client bound to its API key."""

    client: Client
    tenant: Tenant
    secret: str

    def call(
        self, method: str, path: str, data: Any = None, secret: str | None = None, **headers: Any
    ) -> Any:
        kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {secret or self.secret}", **headers}
        if data is not None:
            kwargs["data"] = data if isinstance(data, str | bytes) else json.dumps(data)
            kwargs["content_type"] = "application/json"
        return getattr(self.client, method.lower())(f"/api/kv{path}", **kwargs)

    def put(self, key: str, value: Any, **extra: Any) -> Any:
        return self.call("PUT", f"/keys/{key}", {"value": value, **extra})

    def get(self, key: str, **headers: Any) -> Any:
        return self.call("GET", f"/keys/{key}", **headers)


def make_kv(slug: str) -> KV:
    tenant = services.tenant_create(slug=slug)
    issued = services.apikey_create(tenant_id=tenant.pk, name="test")
    return KV(client=Client(), tenant=tenant, secret=issued.secret)


@pytest.fixture
def kv(db: Any) -> KV:
    return make_kv("acme")


@pytest.fixture
def other(db: Any) -> KV:
    return make_kv("globex")
