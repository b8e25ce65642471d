"""Kvstore data: tenants (namespaces), their API keys, and entries.

An entry row is *live* while ``expires_at`` is null or in the future. Deleting a key expires it at once (the row
becomes a tombstone that keeps its version), and the periodic purge removes dead rows, first raising the tenant's
``version_floor`` above their versions. So a key's version never repeats, even across delete and re-create: an
ETag or an ``if_version`` taken from an old life of a key can never match a new one.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
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
    # db_default: app servers still running the code before this change keep inserting rows during a rolling deploy.
    revision = models.BigIntegerField(
        default=0,
        db_default=0,
        help_text="The tenant's store revision: raised by one with every committed write (a batch is one).",
    )
    compacted_revision = models.BigIntegerField(
        default=0,
        db_default=0,
        help_text="Changes up to this revision were compacted away: a watch or history resumes only from here.",
    )
    history_revisions = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=10_000,
        db_default=10_000,
        help_text="Keep the changes of the last this many revisions (empty: no count limit).",
    )
    history_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=None,
        help_text="Keep changes younger than this many seconds (empty: no age limit).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=Q(version_floor__gte=0), name="kv_tenant_floor_gte_0"),
            models.CheckConstraint(condition=Q(revision__gte=0), name="kv_tenant_revision_gte_0"),
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
    mod_revision = models.BigIntegerField(
        default=0, db_default=0, help_text="The tenant revision of the last write of this key."
    )

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


class Change(models.Model):
    """One event of the tenant's change log: a set, delete or expiry of a key at a revision.

    Written in the same transaction as the write it records, so the log holds exactly the committed writes; a
    watch and a key's history read it. A batch writes several changes under one revision. Compacted by
    ``changes_compact`` down to the tenant's retention.
    """

    OPS = [("set", "set"), ("delete", "delete"), ("expire", "expire")]

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="changes", db_index=False)
    revision = models.BigIntegerField()
    key = models.CharField(max_length=1024)
    op = models.CharField(max_length=8, choices=OPS)
    value = models.TextField(null=True, blank=True, help_text="Compact JSON of a set; empty otherwise.")
    version = models.BigIntegerField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["tenant_id", "revision", "id"]
        indexes = [
            models.Index(fields=["tenant", "revision"], name="kv_change_tenant_rev"),
            models.Index(fields=["tenant", "key", "revision"], name="kv_change_tenant_key_rev"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}@{self.revision} {self.op} {self.key}"


class Role(models.TextChoices):
    """What a tenant member may do in the console, each role including the ones before it."""

    VIEWER = "viewer", "viewer (read and watch)"
    EDITOR = "editor", "editor (also create, edit, delete keys)"
    ADMIN = "admin", "admin (also API keys and members)"


#: A role's rank: a member may act where the rank of their role is at least the rank needed.
ROLE_RANK = {Role.VIEWER: 1, Role.EDITOR: 2, Role.ADMIN: 3}


class TenantMember(models.Model):
    """A person's membership of a tenant, with a role: who may use the tenant in the console.

    Written only by ``services.member_*`` (the console, the Django admin and the demo), which lock the tenant row
    first so "never remove the last admin" holds under concurrent changes. API keys stay the tenant API's
    credentials; a membership opens the console only.
    """

    # The unique (tenant, user) index serves tenant lookups; the user FK's own index serves "my tenants".
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="members", db_index=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kv_memberships"
    )
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant_id", "id"]
        verbose_name = "tenant member"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="kv_member_tenant_user_uniq"),
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="kv_member_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}:{self.user_id} ({self.role})"
