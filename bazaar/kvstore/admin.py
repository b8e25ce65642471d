"""Back office for tenants, API keys and entries. Keys are issued and revoked through the services, so the
secret is shown once and a revocation reaches the fast path's cache flag."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from bazaar.core.errors import DomainError
from bazaar.kvstore import services
from bazaar.kvstore.models import Change, Entry, Tenant, TenantApiKey, TenantMember


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin[Tenant]):
    list_display = ("slug", "name", "revision", "created_at")
    search_fields = ("slug", "name")
    readonly_fields = ("version_floor", "revision", "compacted_revision", "created_at")
    actions = ["issue_key"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a tenant would strand its cached entries and key flags; revoke its keys instead.
        return False

    @admin.action(description="Issue a new API key (shown once)")
    def issue_key(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            issued = services.apikey_create(tenant_id=tenant.pk, name="admin")
            self.message_user(
                request,
                f"API key for {tenant.slug} (copy it now, it is not stored): {issued.secret}",
                messages.WARNING,
            )


@admin.register(TenantApiKey)
class TenantApiKeyAdmin(admin.ModelAdmin[TenantApiKey]):
    list_display = ("tenant", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant",)
    readonly_fields = ("tenant", "name", "prefix", "digest", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # issued from the tenant list (action), the API or `bazaar kvadmin keys create`

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[TenantApiKey]) -> None:
        for key in queryset.order_by("pk"):
            services.apikey_revoke(key_id=key.pk)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """No add, change or delete: rows written only by the services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    """Read-only: writes go through the API or CLI so versions, CAS and cache invalidation stay right. Shows the
    value and whether the row is live, deleted (a tombstone until the purge) or expired."""

    list_display = (
        "tenant",
        "key",
        "value_preview",
        "state",
        "version",
        "mod_revision",
        "updated_at",
        "expires_at",
    )
    list_filter = ("tenant",)
    search_fields = ("key",)
    readonly_fields = (
        "tenant",
        "key",
        "value",
        "state",
        "version",
        "mod_revision",
        "created_at",
        "updated_at",
        "expires_at",
    )

    @admin.display(description="value")
    def value_preview(self, obj: Entry) -> str:
        return obj.value if len(obj.value) <= 80 else obj.value[:79] + "…"

    @admin.display(description="state")
    def state(self, obj: Entry) -> str:
        if obj.expires_at is None or obj.expires_at > timezone.now():
            return "live"
        return "deleted" if obj.expires_at == obj.updated_at else "expired"


@admin.register(Change)
class ChangeAdmin(ReadOnlyAdmin):
    """The change log, read-only (written with each write, trimmed by the compaction task)."""

    list_display = ("tenant", "revision", "op", "key", "version", "value", "at")
    list_filter = ("tenant", "op")
    search_fields = ("key",)


class TenantMemberForm(forms.ModelForm[TenantMember]):
    """Adding or re-roling a member goes through ``services.member_add`` / ``member_set_role`` inside the form's
    validation (the admin view's transaction), so the last-admin rule and the tenant lock hold here too and a
    refusal is a form error that writes nothing."""

    actor: Any = None

    class Meta:
        model = TenantMember
        fields = ("tenant", "user", "role")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            if self.instance.pk is None:
                member = services.member_add(
                    tenant_id=data["tenant"].pk,
                    who=data["user"].username,
                    role=data["role"],
                    actor=self.actor,
                )
            else:
                member = services.member_set_role(
                    tenant_id=self.instance.tenant_id,
                    member_id=self.instance.pk,
                    role=data["role"],
                    actor=self.actor,
                )
        except DomainError as exc:
            raise forms.ValidationError(exc.message, code=exc.code)
        self.instance = member
        return data


@admin.register(TenantMember)
class TenantMemberAdmin(admin.ModelAdmin[TenantMember]):
    """Who may use a tenant in the console. Every write is a ``services.member_*`` call: the tenant keeps an
    admin, and a refusal is shown as a message or a form error."""

    form = TenantMemberForm
    list_display = ("tenant", "user", "role", "created_at")
    list_filter = ("role", "tenant")
    search_fields = ("user__username", "user__email", "tenant__slug")
    autocomplete_fields = ("user",)
    actions = ["remove_members"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("tenant", "user", "created_at") if obj is not None else ()

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type("ActorTenantMemberForm", (form,), {"actor": request.user})

    def save_model(self, request: HttpRequest, obj: TenantMember, form: Any, change: bool) -> None:
        """Nothing left to write: the form's validation called the service."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # removal is the "Remove selected members" action (through the service, last-admin rule)

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Remove selected members (a tenant keeps its last admin)")
    def remove_members(self, request: HttpRequest, queryset: QuerySet[TenantMember]) -> None:
        removed = 0
        for member in queryset.select_related("user", "tenant").order_by("pk"):
            try:
                services.member_remove(tenant_id=member.tenant_id, member_id=member.pk, actor=request.user)  # type: ignore[arg-type]
            except DomainError as exc:
                self.message_user(request, f"{member.tenant.slug}: {exc.message}", messages.ERROR)
            else:
                removed += 1
        self.message_user(request, f"Removed {removed} member(s).")
