"""The KV console: server-rendered pages for people (browse, view, edit, delete, history, watch, tenants, keys,
members).

Who may use a tenant here (``bazaar.kvstore.access``): staff, in every tenant; a tenant's members, what their role
allows — viewer: read and watch; editor: also create, edit and delete keys; admin: also the tenant's API keys and
members. Anonymous visitors go to the login page; a signed-in user who is not a member of a tenant gets the 404 of
a tenant that does not exist (tenant names do not leak); a member below the role a page needs gets 403 with a
message naming the role, before the request is read, so nothing is written. Every write goes through
``bazaar.kvstore.services`` (so the cache invalidation and the change log hold as for the API); every read through
``selectors``/``watch``/``access``. Pages are ``private, no-store``: they show one tenant's data to one person and
are never cached.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from bazaar.accounts.models import User
from bazaar.core.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from bazaar.kvstore import access, selectors, services, watch
from bazaar.kvstore.models import Role, Tenant

PAGE_SIZE = 25
WATCH_WAIT_MAX = 25.0


def console(need: str = Role.VIEWER) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Signed in; for a tenant page (``tenant_slug``), the tenant and a role that allows ``need`` (see the module
    docstring): a non-member gets 404, a member below ``need`` a 403 page naming the role. The view gets
    ``tenant``; the request carries ``kv_access`` (the tenant and the role) for the templates."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("accounts:login"))
            if "tenant_slug" in kwargs:
                try:
                    found = access.console_access(user=request.user, slug=kwargs.pop("tenant_slug"))
                except NotFound as exc:
                    raise Http404(exc.message)
                request.kv_access = found  # type: ignore[attr-defined]
                kwargs["tenant"] = found.tenant
                try:
                    access.require(found.role, need)
                except PermissionDenied as exc:
                    response = _page(
                        request, "denied.html", {"tenant": found.tenant, "error": exc}, exc.status
                    )
                    response["Cache-Control"] = "private, no-store"
                    return response
            response = view(request, *args, **kwargs)
            response["Cache-Control"] = "private, no-store"
            return response

        return wrapper

    return decorate


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """Render a console page with what every page's navigation needs: the person's access to this tenant (what
    the nav offers) and, for a member of several tenants, the tenants to switch to."""
    found: access.Access | None = getattr(request, "kv_access", None)
    base = {
        "is_staff": request.user.is_staff,
        "role": found.role if found else None,
        "can_edit": found is not None and found.can(Role.EDITOR),
        "can_admin": found is not None and found.can(Role.ADMIN),
        "switch_to": [] if request.user.is_staff else list(access.memberships_of(user=request.user)),
    }
    return render(request, f"kvstore/{template}", {**base, **context}, status=status)


def _int_or_none(raw: str | None, field: str, code: str) -> int | None:
    """A form's whole-number field: empty is None; anything else not a whole number is ValidationFailed."""
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.lstrip("-").isdigit() or len(raw) > 18:
        raise ValidationFailed(f"{field} must be a whole number.", code=code)
    return int(raw)


def _entry(tenant: Tenant, key: str) -> dict[str, Any] | None:
    """The live entry as a dict (value, version, mod revision, TTL left), or None when it does not exist."""
    try:
        read = selectors.entry_get(tenant_id=tenant.pk, key=key)
    except NotFound:
        return None
    entry: dict[str, Any] = json.loads(read.body)
    entry["pretty"] = json.dumps(entry.get("value"), indent=2, ensure_ascii=False)
    entry["mod_revision"] = read.revision
    return entry


# --- tenants ------------------------------------------------------------------------------------------------


@console()
@require_http_methods(["GET", "POST"])
def tenants(request: HttpRequest) -> HttpResponse:
    """Staff: every tenant, and POST creates one (``services.tenant_create``). Anyone else: the tenants they are a
    member of, with their role (none: how to get added). Only staff create tenants (403 ``staff_required``)."""
    error: DomainError | None = None
    status = 200
    if request.method == "POST":
        try:
            if not request.user.is_staff:
                raise PermissionDenied("Only staff create tenants.", code="staff_required")
            tenant = services.tenant_create(
                slug=request.POST.get("slug", ""), name=request.POST.get("name", "")
            )
        except DomainError as exc:
            error, status = exc, exc.status
        else:
            messages.success(request, f"Tenant {tenant.slug} created.")
            return redirect("kvstore:browse", tenant_slug=tenant.slug)
    listed = selectors.tenant_list() if request.user.is_staff else None
    context = {"tenants": listed, "error": error, "form": request.POST}
    return _page(request, "tenants.html", context, status)


@console(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def apikeys(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    """A tenant's API keys; POST issues one and shows its secret on this response only (never stored)."""
    error, status, issued = None, 200, None
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        try:
            if not name:
                raise ValidationFailed("Give the key a name.", code="invalid_name")
            issued = services.apikey_create(tenant_id=tenant.pk, name=name)
            status = 201
        except DomainError as exc:
            error, status = exc, exc.status
    context = {"tenant": tenant, "keys": selectors.apikey_list(tenant_id=tenant.pk), "issued": issued}
    return _page(request, "apikeys.html", {**context, "error": error}, status)


@console(Role.ADMIN)
@require_http_methods(["POST"])
def apikey_revoke(request: HttpRequest, tenant: Tenant, key_id: int) -> HttpResponse:
    """Revoke one of the tenant's keys (a key of another tenant is the 404 of a missing one)."""
    try:
        key = services.apikey_revoke(key_id=key_id, tenant_id=tenant.pk)
    except NotFound as exc:
        raise Http404(exc.message)
    messages.success(request, f"Key {key.name} ({key.prefix}…) revoked.")
    return redirect("kvstore:apikeys", tenant_slug=tenant.slug)


# --- members ------------------------------------------------------------------------------------------------


def _members_page(request: HttpRequest, tenant: Tenant, error: DomainError | None = None) -> HttpResponse:
    context = {
        "tenant": tenant,
        "members": access.member_list(tenant_id=tenant.pk),
        "roles": Role.choices,
        "error": error,
        "form": request.POST if error else {},
    }
    return _page(request, "members.html", context, error.status if error else 200)


def _actor(request: HttpRequest) -> User:
    """The signed-in person acting (``console`` sent everyone else to the login page)."""
    return cast(User, request.user)


@console(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def members(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    """The tenant's members and their roles; POST adds an existing user by username or e-mail
    (``services.member_add``)."""
    if request.method == "GET":
        return _members_page(request, tenant)
    try:
        member = services.member_add(
            tenant_id=tenant.pk,
            who=request.POST.get("who", ""),
            role=request.POST.get("role", ""),
            actor=_actor(request),
        )
    except DomainError as exc:
        return _members_page(request, tenant, exc)
    messages.success(request, f"{member.user.username} added as {member.role}.")
    return redirect("kvstore:members", tenant_slug=tenant.slug)


@console(Role.ADMIN)
@require_http_methods(["POST"])
def member_role(request: HttpRequest, tenant: Tenant, member_id: int) -> HttpResponse:
    """Change a member's role (``services.member_set_role``: the tenant keeps an admin). Demoting yourself leads
    to the keys, since the members page is for admins."""
    try:
        member = services.member_set_role(
            tenant_id=tenant.pk, member_id=member_id, role=request.POST.get("role", ""), actor=_actor(request)
        )
    except DomainError as exc:
        return _members_page(request, tenant, exc)
    messages.success(request, f"{member.user.username} is now {member.role}.")
    if member.user_id == request.user.pk and not access.role_allows(
        access.role_of(user=request.user, tenant_id=tenant.pk), Role.ADMIN
    ):
        return redirect("kvstore:browse", tenant_slug=tenant.slug)
    return redirect("kvstore:members", tenant_slug=tenant.slug)


@console(Role.ADMIN)
@require_http_methods(["POST"])
def member_remove(request: HttpRequest, tenant: Tenant, member_id: int) -> HttpResponse:
    """Remove a member (``services.member_remove``: never the last admin). Removing yourself leads back to the
    tenant list, where this tenant is no longer yours."""
    try:
        member = services.member_remove(tenant_id=tenant.pk, member_id=member_id, actor=_actor(request))
    except DomainError as exc:
        return _members_page(request, tenant, exc)
    messages.success(request, f"{member.user.username} removed from {tenant.slug}.")
    if access.role_of(user=request.user, tenant_id=tenant.pk) is None:
        return redirect("kvstore:tenants")
    return redirect("kvstore:members", tenant_slug=tenant.slug)


# --- keys ---------------------------------------------------------------------------------------------------


@console()
@require_GET
def browse(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    """A page of live keys in key order under a prefix, with the listing's cursor for the next page."""
    prefix = request.GET.get("prefix", "")
    cursor = request.GET.get("cursor") or None
    try:
        page = json.loads(
            selectors.entry_list(tenant_id=tenant.pk, prefix=prefix, limit=PAGE_SIZE, cursor=cursor)
        )
    except DomainError as exc:
        context = {"tenant": tenant, "prefix": prefix, "items": [], "error": exc}
        return _page(request, "browse.html", context, exc.status)
    context = {"tenant": tenant, "prefix": prefix, "items": page["items"], "page": page, "cursor": cursor}
    return _page(request, "browse.html", context)


def _key_param(request: HttpRequest) -> str:
    return request.GET.get("key", "") if request.method == "GET" else request.POST.get("key", "")


@console()
@require_GET
def entry(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    """One key: its value as pretty JSON, version, mod revision and TTL left."""
    key = _key_param(request)
    try:
        found = _entry(tenant, key)
    except DomainError as exc:
        return _page(request, "entry.html", {"tenant": tenant, "key": key, "error": exc}, exc.status)
    status = 200 if found is not None else 404
    return _page(request, "entry.html", {"tenant": tenant, "key": key, "entry": found}, status)


@console(Role.EDITOR)
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    """Create or edit a key. The form carries the version it was read at (0 for a new key); the service's
    compare-and-swap refuses a stale edit, and the page then shows both values: yours and the current one."""
    if request.method == "GET":
        key = request.GET.get("key", "")
        current = _entry(tenant, key) if key else None
        form = {
            "key": key,
            "value": current["pretty"] if current else "",
            "ttl": "",
            "version": current["version"] if current else 0,
        }
        return _page(request, "edit.html", {"tenant": tenant, "form": form, "new": current is None})
    posted: dict[str, str] = {f: request.POST.get(f, "") for f in ("key", "value", "ttl", "version")}
    context: dict[str, Any] = {"tenant": tenant, "form": posted, "new": posted["version"] in ("", "0")}
    try:
        try:
            value = json.loads(posted["value"])
        except ValueError:
            raise ValidationFailed(
                'The value must be JSON: text in double quotes ("hello"), a number, true/false, null, a list '
                "or an object.",
                code="invalid_value",
            )
        version = _int_or_none(posted["version"], "The version", "invalid_if_version")
        ttl = _int_or_none(posted["ttl"], "The TTL", "invalid_ttl")
        result = services.entry_set(
            tenant_id=tenant.pk, key=posted["key"], value=value, ttl=ttl, if_version=version or 0
        )
    except DomainError as exc:
        if exc.code == "version_conflict":
            context["current"] = _entry(tenant, posted["key"])
        return _page(request, "edit.html", {**context, "error": exc}, exc.status)
    messages.success(request, f"Saved {result.key!r}: version {result.version}, revision {result.revision}.")
    return redirect(reverse("kvstore:entry", args=[tenant.slug]) + "?" + urlencode({"key": result.key}))


@console(Role.EDITOR)
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    """GET asks to confirm (showing the value); POST deletes at the version shown (a changed key is refused)."""
    key = _key_param(request)
    context: dict[str, Any] = {"tenant": tenant, "key": key}
    try:
        if request.method == "GET":
            found = _entry(tenant, key)
            if found is None:
                raise NotFound(f"No key {key!r}.", code="key_not_found")
            return _page(request, "delete.html", {**context, "entry": found})
        version = _int_or_none(request.POST.get("version"), "The version", "invalid_if_version")
        services.entry_delete(tenant_id=tenant.pk, key=key, if_version=version)
    except DomainError as exc:
        context["entry"] = _entry(tenant, key) if exc.code == "version_conflict" else None
        return _page(request, "delete.html", {**context, "error": exc}, exc.status)
    messages.success(request, f"Deleted {key!r}.")
    return redirect("kvstore:browse", tenant_slug=tenant.slug)


@console()
@require_GET
def history(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    """A key's retained changes, newest first, paged by revision."""
    key = request.GET.get("key", "")
    context: dict[str, Any] = {"tenant": tenant, "key": key}
    try:
        before = _int_or_none(request.GET.get("before"), "before", "invalid_revision")
        page = selectors.key_history(tenant_id=tenant.pk, key=key, limit=PAGE_SIZE, before=before)
    except DomainError as exc:
        return _page(request, "history.html", {**context, "error": exc}, exc.status)
    for item in page["items"]:
        item["pretty"] = "" if item["value"] is None else json.dumps(item["value"], ensure_ascii=False)
    return _page(request, "history.html", {**context, "page": page})


# --- watch --------------------------------------------------------------------------------------------------


@console()
@require_GET
def watch_page(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    """Changes under a prefix since a revision. Without JavaScript it is a page with a "newer changes" link;
    console.js then follows it live through ``watch_json`` (the /api/kv/watch stream takes tenant API keys only)."""
    prefix = request.GET.get("prefix", "")
    context: dict[str, Any] = {"tenant": tenant, "prefix": prefix}
    try:
        since = _int_or_none(request.GET.get("since"), "since", "invalid_revision")
        if since is None:
            since = selectors.tenant_revision(tenant_id=tenant.pk)
        page = selectors.changes_since(tenant_id=tenant.pk, since=since, prefix=prefix, limit=PAGE_SIZE)
    except DomainError as exc:
        return _page(request, "watch.html", {**context, "error": exc}, exc.status)
    return _page(request, "watch.html", {**context, "since": since, "page": page})


@console()
@require_GET
def watch_json(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    """A session-authenticated long-poll for the console: ``watch.long_poll`` (the same selector and hub as
    ``GET /api/kv/watch``), waiting at most ``wait`` seconds (≤ 25, default 0). Errors are the API's JSON shape."""
    try:
        since = _int_or_none(request.GET.get("since"), "since", "invalid_revision")
        wait = _int_or_none(request.GET.get("wait"), "wait", "invalid_wait") or 0
        if since is None:
            raise ValidationFailed("since is required.", code="invalid_revision")
        page = watch.long_poll(
            tenant_id=tenant.pk,
            since=since,
            prefix=request.GET.get("prefix", ""),
            wait=min(max(wait, 0), WATCH_WAIT_MAX),
            limit=None,
        )
    except DomainError as exc:
        return JsonResponse(exc.as_dict(), status=exc.status)
    return JsonResponse(page)
