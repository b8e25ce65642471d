"""Tenant and API-key writes, and the API-key check used by every tenant endpoint."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from bazaar.core.errors import Conflict, NotFound, ValidationFailed
from bazaar.kvstore.cache import API_KEY_PREFIX, digest_of, forget_key_on_commit, known_tenant, remember_key
from bazaar.kvstore.models import Tenant, TenantApiKey


@dataclass(frozen=True)
class IssuedKey:
    key: TenantApiKey
    secret: str


@dataclass(frozen=True)
class KeyPrincipal:
    """Who a tenant request is: the key's tenant, and the key itself (for the fast-path flag)."""

    tenant_id: int
    digest: str


def tenant_create(*, slug: str, name: str = "") -> Tenant:
    """Create a tenant. Raises ValidationFailed (``invalid_slug``) or Conflict (``tenant_exists``); the unique
    constraint on ``slug`` decides a race of two creators."""
    slug = (slug or "").strip()
    if not slug or slugify(slug) != slug or len(slug) > 50:
        raise ValidationFailed(
            "A tenant slug is 1-50 lowercase letters, digits, '-' or '_'.", code="invalid_slug"
        )
    try:
        with transaction.atomic():
            return Tenant.objects.create(slug=slug, name=(name or slug).strip()[:200])
    except IntegrityError:
        raise Conflict(f"Tenant {slug!r} exists.", code="tenant_exists")


def apikey_create(*, tenant_id: int, name: str = "default", secret: str | None = None) -> IssuedKey:
    """Issue an API key for a tenant; the secret (``kv_…``) is returned once and only its SHA-256 is stored.

    ``secret`` lets the demo derive a stable key; it must start with ``kv_``. Raises NotFound
    (``tenant_not_found``) or Conflict (``key_exists`` for a reused secret).
    """
    if not Tenant.objects.filter(pk=tenant_id).exists():
        raise NotFound("No such tenant.", code="tenant_not_found")
    secret = secret or API_KEY_PREFIX + secrets.token_urlsafe(32)
    if not secret.startswith(API_KEY_PREFIX) or len(secret) < 20:
        raise ValidationFailed("An API key starts with 'kv_' and has 20+ characters.", code="invalid_api_key")
    try:
        with transaction.atomic():
            key = TenantApiKey.objects.create(
                tenant_id=tenant_id,
                name=(name or "default").strip()[:100],
                prefix=secret[:12],
                digest=digest_of(secret),
            )
    except IntegrityError:
        raise Conflict("That API key exists already.", code="key_exists")
    return IssuedKey(key=key, secret=secret)


def apikey_revoke(*, key_id: int, tenant_id: int | None = None) -> TenantApiKey:
    """Revoke an API key (of ``tenant_id`` when given). Revoking twice is harmless.

    Raises NotFound (``key_not_found``). Locks the key row; the fast path's validity flag is deleted after
    commit, so from then on every request with the key goes to Django and gets 401.
    """
    with transaction.atomic():
        qs = TenantApiKey.objects.select_for_update().filter(pk=key_id)
        if tenant_id is not None:
            qs = qs.filter(tenant_id=tenant_id)
        key = qs.first()
        if key is None:
            raise NotFound("No such API key.", code="key_not_found")
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
        forget_key_on_commit(key.digest)
    return key


def apikey_authenticate(secret: str) -> KeyPrincipal | None:
    """The tenant behind an active API key, or None.

    A key this process already checked is trusted while its validity flag is in the cache (one round trip; the
    flag is deleted when the key is revoked). Otherwise the database decides; an active key is then recorded
    for this path and the fast path (in-process digest → tenant, the flag in the cache) and checked once more,
    so a revocation committing meanwhile cannot leave a valid-looking flag behind. ``last_used_at`` is touched
    on database checks, at most once a minute.
    """
    if not secret.startswith(API_KEY_PREFIX):
        return None
    digest = digest_of(secret)
    tenant_id = known_tenant(digest)
    if tenant_id is not None:
        return KeyPrincipal(tenant_id=tenant_id, digest=digest)
    row = (
        TenantApiKey.objects.filter(digest=digest, revoked_at__isnull=True)
        .values_list("id", "tenant_id", "last_used_at")
        .first()
    )
    if row is None:
        return None
    key_id, tenant_id, last_used = row
    now = timezone.now()
    if last_used is None or (now - last_used).total_seconds() > 60:
        TenantApiKey.objects.filter(pk=key_id).update(last_used_at=now)
    remember_key(digest, tenant_id)
    if not TenantApiKey.objects.filter(pk=key_id, revoked_at__isnull=True).exists():
        forget_key_on_commit(digest)
        return None
    return KeyPrincipal(tenant_id=tenant_id, digest=digest)
