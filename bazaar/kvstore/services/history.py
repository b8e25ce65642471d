"""The change log's retention: ``changes_compact`` trims each tenant's log to what the tenant keeps."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Max, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from bazaar.core.errors import ValidationFailed
from bazaar.kvstore.models import Change, Tenant

_DELETE_BATCH = 5000


def _cutoff(tenant: Tenant, now: datetime) -> int:
    """The highest revision the tenant's retention lets go (0: keep everything)."""
    cutoff = 0
    if tenant.history_revisions is not None:
        cutoff = max(cutoff, tenant.revision - tenant.history_revisions)
    if tenant.history_seconds is not None:
        old = Change.objects.filter(
            tenant_id=tenant.pk, at__lt=now - timedelta(seconds=tenant.history_seconds)
        ).aggregate(m=Max("revision"))["m"]
        cutoff = max(cutoff, int(old or 0))
    return cutoff


def changes_compact(*, now: datetime | None = None) -> int:
    """Delete every tenant's changes beyond its retention (``history_revisions``: the last N revisions;
    ``history_seconds``: younger than S seconds; either or both); return how many rows were deleted.

    The tenant's ``compacted_revision`` is raised and committed *before* the rows go, and readers (watch,
    history) check it *after* reading: a reader racing the compaction either read complete data or is told
    ``revision_compacted`` — never a silent hole. Deletes in batches of short transactions; takes no entry locks.
    """
    now = now or timezone.now()
    total = 0
    for tenant in Tenant.objects.order_by("pk"):
        cutoff = _cutoff(tenant, now)
        if cutoff <= tenant.compacted_revision:
            continue
        Tenant.objects.filter(pk=tenant.pk).update(
            compacted_revision=Greatest(F("compacted_revision"), Value(cutoff))
        )
        while True:
            with transaction.atomic():
                ids = list(
                    Change.objects.filter(tenant_id=tenant.pk, revision__lte=cutoff).values_list(
                        "pk", flat=True
                    )[:_DELETE_BATCH]
                )
                deleted, _ = Change.objects.filter(pk__in=ids).delete()
            total += deleted
            if len(ids) < _DELETE_BATCH:
                break
    return total


def tenant_set_retention(*, tenant_id: int, revisions: int | None, seconds: int | None) -> Tenant:
    """Set how much history a tenant keeps (None: no limit of that kind). The next compaction applies it.

    Raises ValidationFailed ``invalid_retention`` for a count or age below 1; writes nothing then.
    """
    for name, v in (("revisions", revisions), ("seconds", seconds)):
        if v is not None and not (1 <= v <= 2**31 - 1):
            raise ValidationFailed(f"{name} must be between 1 and {2**31 - 1}.", code="invalid_retention")
    Tenant.objects.filter(pk=tenant_id).update(history_revisions=revisions, history_seconds=seconds)
    return Tenant.objects.get(pk=tenant_id)
