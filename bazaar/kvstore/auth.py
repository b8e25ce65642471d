"""Tenant API-key authentication for the kvstore endpoints (``Authorization: Bearer kv_…``)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from bazaar.core.errors import PermissionDenied
from bazaar.kvstore.services import KeyPrincipal, apikey_authenticate


class TenantKey(HttpBearer):
    """A tenant's API key."""

    def authenticate(self, request: HttpRequest, token: str) -> KeyPrincipal | None:
        return apikey_authenticate(token)


tenant_key = TenantKey()


def principal(request: HttpRequest) -> KeyPrincipal:
    """The authenticated tenant key of a request (after Ninja's auth ran)."""
    auth = getattr(request, "auth", None)
    if not isinstance(auth, KeyPrincipal):
        raise PermissionDenied()
    return auth
