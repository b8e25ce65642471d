"""Kvstore data: tenants (namespaces), their API keys, and entries.

An entry row is *live* while ``expires_at`` is null or in the future. Deleting a key expires it at once (the row
becomes a tombstone that keeps its version), and the periodic purge removes dead rows, first raising the tenant's
``version_floor`` above their versions. So a key's version never repeats, even across delete and re-create: an
ETag or an ``if_version`` taken from an old life of a key can never match a new one.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q

from bazaar.core.freshness import FreshQuerySet


class Tenant(models.Model):
    """A namespace. Its API keys see only its entries."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200, blank=True)
    version_floor = models.BigIntegerField(
        default=0,
        help_text="Highest version of a purged entry: new keys start above it, so versions never repeat.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=Q(version_floor__gte=0), name="kv_tenant_floor_gte_0")
        ]

    def __str__(self) -> str:
        return self.slug


class TenantApiKey(models.Model):
    """A tenant's API key (``kv_…``). Only the SHA-256 digest is stored; the secret is shown once."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="First characters of the key, to recognise it.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = FreshQuerySet["TenantApiKey"].as_manager()

    class Meta:
        ordering = ["tenant_id", "-created_at", "-id"]
        verbose_name = "tenant API key"

    def __str__(self) -> str:
        return f"{self.tenant_id}:{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class EntryQuerySet(FreshQuerySet["Entry"]):
    def live(self, now: datetime) -> EntryQuerySet:
        """Entries not expired (and not deleted) at ``now`` (from timezone.now(), so tests can move time)."""
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class Entry(models.Model):
    """One key of one tenant. ``value`` holds compact JSON text (a text value is a JSON string)."""

    # No separate tenant index: the unique (tenant, key) index serves every tenant lookup, and one index less
    # is one btree insert less per write.
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="entries", db_index=False)
    key = models.CharField(max_length=1024)
    value = models.TextField()
    version = models.BigIntegerField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = EntryQuerySet.as_manager()

    class Meta:
        ordering = ["tenant_id", "key"]
        verbose_name_plural = "entries"
        constraints = [
            # Also the index behind keyset pagination (tenant, key > cursor ORDER BY key).
            models.UniqueConstraint(fields=["tenant", "key"], name="kv_entry_tenant_key_uniq"),
            models.CheckConstraint(condition=Q(version__gte=1), name="kv_entry_version_gte_1"),
            models.CheckConstraint(condition=~Q(key=""), name="kv_entry_key_not_empty"),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"], name="kv_entry_expiring", condition=Q(expires_at__isnull=False)
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}:{self.key}"
