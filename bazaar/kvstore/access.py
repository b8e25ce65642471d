"""Who may do what in the KV console: a person's role in a tenant, and the reads of memberships.

Reads only (the writes are ``services.member_*``). Staff may do everything in every tenant; a member of a tenant
what their role allows (viewer: read and watch; editor: also create, edit, delete keys; admin: also API keys and
members); anyone else gets the answer for a tenant that does not exist, so tenant names do not leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from bazaar.core.errors import NotFound, PermissionDenied
from bazaar.kvstore.models import ROLE_RANK, Role, Tenant, TenantMember

STAFF = "staff"
#: What each role may do, for the messages of a refusal.
CAN = {
    Role.VIEWER: "read and watch keys",
    Role.EDITOR: "change keys",
    Role.ADMIN: "manage API keys and members",
}


def role_of(*, user: Any, tenant_id: int) -> str | None:
    """The user's role in the tenant: ``"staff"`` for active staff (everything, member or not), the membership's
    role, or None for anyone else (signed out, inactive, or not a member)."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_staff:
        return STAFF
    role: str | None = (
        TenantMember.objects.filter(tenant_id=tenant_id, user_id=user.pk)
        .values_list("role", flat=True)
        .first()
    )
    return role


def role_allows(role: str | None, needed: str) -> bool:
    """Whether ``role`` (from ``role_of``) includes ``needed`` (a ``Role``): staff everything, a member up to
    their role's rank, a non-member nothing."""
    if role == STAFF:
        return True
    if role is None:
        return False
    return ROLE_RANK[Role(role)] >= ROLE_RANK[Role(needed)]


def require(role: str | None, needed: str) -> None:
    """Raise unless ``role`` allows ``needed``: NotFound (``tenant_not_found``, the answer for a missing tenant)
    for a non-member, PermissionDenied (``role_required``, naming the role needed) for a member below it."""
    if role is None:
        raise NotFound("No such tenant.", code="tenant_not_found")
    if not role_allows(role, needed):
        raise PermissionDenied(
            f"Your role in this tenant is {role}: only {needed}s"
            f"{' and admins' if needed == Role.EDITOR else ''} may {CAN[Role(needed)]}.",
            code="role_required",
        )


@dataclass(frozen=True)
class Access:
    """A person's way into one tenant: the tenant and their role in it (``"staff"`` or a ``Role`` value)."""

    tenant: Tenant
    role: str

    def can(self, needed: str) -> bool:
        return role_allows(self.role, needed)


def console_access(*, user: Any, slug: str) -> Access:
    """The tenant ``slug`` and the user's role in it. Raises NotFound (``tenant_not_found``) for a missing tenant
    and, with the same message, for a tenant the user is not a member of."""
    tenant = Tenant.objects.filter(slug=slug).first()
    role = role_of(user=user, tenant_id=tenant.pk) if tenant is not None else None
    if tenant is None or role is None:
        raise NotFound("No such tenant.", code="tenant_not_found")
    return Access(tenant=tenant, role=role)


def memberships_of(*, user: Any) -> QuerySet[TenantMember]:
    """The user's memberships with their tenants, by tenant slug (the console's tenant list and switcher)."""
    return TenantMember.objects.filter(user_id=user.pk).select_related("tenant").order_by("tenant__slug")


def member_list(*, tenant_id: int) -> QuerySet[TenantMember]:
    """A tenant's members with their users, by username."""
    return TenantMember.objects.filter(tenant_id=tenant_id).select_related("user").order_by("user__username")


def admin_count(*, tenant_id: int) -> int:
    return TenantMember.objects.filter(tenant_id=tenant_id, role=Role.ADMIN).count()
