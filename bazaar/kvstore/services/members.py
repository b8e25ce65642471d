"""Tenant membership: who may use a tenant in the console, and with which role (viewer, editor, admin).

Managed by staff and by the tenant's own admins (the console, the Django admin, the demo). Every change takes the
tenant row ``FOR UPDATE`` first — the same row every KV writer locks first — so the membership changes of one
tenant serialize and "a tenant keeps at least one admin" cannot be broken by two admins demoting each other at the
same moment. A refused change raises before writing anything.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q

from bazaar.accounts.models import User
from bazaar.core.errors import Conflict, NotFound, ValidationFailed
from bazaar.kvstore import access
from bazaar.kvstore.models import Role, Tenant, TenantMember


def _need_admin(*, actor: User, tenant_id: int) -> None:
    """Raise unless the actor manages the tenant's members (staff or its admins): NotFound (``tenant_not_found``)
    for a non-member, PermissionDenied (``role_required``) for a member below admin."""
    access.require(access.role_of(user=actor, tenant_id=tenant_id), Role.ADMIN)


def _role(raw: str) -> Role:
    try:
        return Role((raw or "").strip())
    except ValueError:
        raise ValidationFailed("A role is viewer, editor or admin.", code="invalid_role")


def _lock_tenant(tenant_id: int) -> Tenant:
    """The tenant row, locked: first, so the actor's own role is read under the lock too (an admin demoted a
    moment ago cannot still act). A missing tenant is the same NotFound a non-member gets."""
    tenant = Tenant.objects.select_for_update().filter(pk=tenant_id).first()
    if tenant is None:
        raise NotFound("No such tenant.", code="tenant_not_found")
    return tenant


def _find_user(who: str) -> User:
    """The active user named ``who`` (username, exact) or with that e-mail address (case-insensitive)."""
    who = (who or "").strip()
    if not who:
        raise ValidationFailed(
            "Give the username or e-mail address of the person to add.", code="user_not_found"
        )
    matches = list(
        User.objects.filter(Q(username=who) | Q(email__iexact=who), is_active=True).order_by("pk")[:3]
    )
    by_name = [u for u in matches if u.username == who]
    if by_name:
        return by_name[0]
    if not matches:
        raise NotFound(
            f"No user {who!r}: they need an account first (sign up at /accounts/signup/).",
            code="user_not_found",
        )
    if len(matches) > 1:
        raise Conflict(
            f"More than one account uses {who!r}; add them by username instead.", code="user_ambiguous"
        )
    return matches[0]


def member_add(*, tenant_id: int, who: str, role: str, actor: User) -> TenantMember:
    """Add an existing user (by username or e-mail) to a tenant with a role.

    The actor must be staff or an admin of the tenant. Raises NotFound (``tenant_not_found`` for a tenant the
    actor does not belong to, ``user_not_found``), PermissionDenied (``role_required``), ValidationFailed
    (``invalid_role``, ``user_not_found`` for an empty name), Conflict (``member_exists``, ``user_ambiguous``).
    Locks the tenant row; the unique (tenant, user) constraint decides a race of two adders.
    """
    wanted = _role(role)
    with transaction.atomic():
        _lock_tenant(tenant_id)
        _need_admin(actor=actor, tenant_id=tenant_id)
        user = _find_user(who)
        if TenantMember.objects.filter(tenant_id=tenant_id, user=user).exists():
            raise Conflict(
                f"{user.username} is a member already; change their role instead.", code="member_exists"
            )
        try:
            with transaction.atomic():
                return TenantMember.objects.create(tenant_id=tenant_id, user=user, role=wanted)
        except IntegrityError:
            raise Conflict(f"{user.username} is a member already.", code="member_exists")


def _locked_member(*, tenant_id: int, member_id: int) -> TenantMember:
    member = (
        TenantMember.objects.select_for_update()
        .select_related("user")
        .filter(pk=member_id, tenant_id=tenant_id)
        .first()
    )
    if member is None:
        raise NotFound("No such member.", code="member_not_found")
    return member


def _keep_an_admin(*, tenant_id: int, leaving: TenantMember) -> None:
    """Refuse (Conflict ``last_admin``) when ``leaving`` is the tenant's only admin. Runs under the tenant lock."""
    if leaving.role != Role.ADMIN:
        return
    others = TenantMember.objects.filter(tenant_id=tenant_id, role=Role.ADMIN).exclude(pk=leaving.pk)
    if not others.exists():
        raise Conflict(
            f"{leaving.user.username} is the tenant's last admin: make someone else admin first.",
            code="last_admin",
        )


def member_set_role(*, tenant_id: int, member_id: int, role: str, actor: User) -> TenantMember:
    """Change a member's role. The actor must be staff or an admin of the tenant; the last admin cannot be
    demoted.

    Raises ValidationFailed (``invalid_role``), NotFound (``tenant_not_found``, ``member_not_found`` — also for a
    member of another tenant), PermissionDenied (``role_required``), Conflict (``last_admin``). Locks the tenant
    row, then the member row.
    """
    wanted = _role(role)
    with transaction.atomic():
        _lock_tenant(tenant_id)
        _need_admin(actor=actor, tenant_id=tenant_id)
        member = _locked_member(tenant_id=tenant_id, member_id=member_id)
        if member.role == wanted:
            return member
        if wanted != Role.ADMIN:
            _keep_an_admin(tenant_id=tenant_id, leaving=member)
        member.role = wanted
        member.save(update_fields=["role"])
    return member


def member_remove(*, tenant_id: int, member_id: int, actor: User) -> TenantMember:
    """Remove a member (an admin may remove themselves while another admin remains). The actor must be staff or
    an admin of the tenant.

    Raises NotFound (``tenant_not_found``, ``member_not_found``), PermissionDenied (``role_required``), Conflict
    (``last_admin``). Locks the tenant row, then the member row. Returns the removed membership (unsaved).
    """
    with transaction.atomic():
        _lock_tenant(tenant_id)
        _need_admin(actor=actor, tenant_id=tenant_id)
        member = _locked_member(tenant_id=tenant_id, member_id=member_id)
        _keep_an_admin(tenant_id=tenant_id, leaving=member)
        member.delete()
    return member
