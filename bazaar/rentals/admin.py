"""Back office for the rental desk. Edits here need no cache code: every write of a title or a copy invalidates
the catalogue through the declared dependencies (bazaar.rentals.cache, bazaar.core.freshness)."""

from __future__ import annotations

from django.contrib import admin

from bazaar.rentals.models import (
    Copy,
    Customer,
    ExportJob,
    Hold,
    Payment,
    PricePlan,
    ReminderSent,
    Rental,
    Title,
)


class CopyInline(admin.TabularInline[Copy, Title]):
    model = Copy
    extra = 0
    fields = ["barcode", "state"]


@admin.register(Title)
class TitleAdmin(admin.ModelAdmin[Title]):
    list_display = ["title", "author", "kind", "isbn", "created_at"]
    list_filter = ["kind"]
    search_fields = ["title", "author", "isbn"]
    inlines = [CopyInline]


@admin.register(Copy)
class CopyAdmin(admin.ModelAdmin[Copy]):
    list_display = ["barcode", "title", "state"]
    list_filter = ["state"]
    search_fields = ["barcode", "title__title"]
    list_select_related = ["title"]
    raw_id_fields = ["title"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin[Customer]):
    list_display = ["name", "email", "phone", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "email", "phone"]


@admin.register(PricePlan)
class PricePlanAdmin(admin.ModelAdmin[PricePlan]):
    list_display = [
        "kind",
        "daily_rate",
        "intro_days",
        "intro_rate",
        "minimum_charge",
        "minimum_below_days",
        "loan_days",
        "fine_per_day",
        "fine_grace_days",
        "fine_cap",
        "updated_at",
    ]


@admin.register(Rental)
class RentalAdmin(admin.ModelAdmin[Rental]):
    """Rentals are opened and closed by the desk services (charges computed there): read-only here."""

    list_display = ["id", "customer", "title", "copy", "rented_at", "due_at", "returned_at", "charge"]
    list_filter = ["returned_at", "title__kind"]
    search_fields = ["customer__name", "title__title", "copy__barcode"]
    list_select_related = ["customer", "title", "copy"]
    readonly_fields = [f.name for f in Rental._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin[Payment]):
    list_display = ["customer", "amount", "received_at", "note"]
    search_fields = ["customer__name"]
    raw_id_fields = ["customer"]


@admin.register(Hold)
class HoldAdmin(admin.ModelAdmin[Hold]):
    list_display = ["customer", "title", "created_at", "closed_at"]
    raw_id_fields = ["customer", "title"]


@admin.register(ReminderSent)
class ReminderSentAdmin(admin.ModelAdmin[ReminderSent]):
    list_display = ["rental", "kind", "day", "email", "sent_at"]
    list_filter = ["kind", "day"]


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin[ExportJob]):
    list_display = ["id", "status", "done", "total", "created_at", "finished_at", "file"]
    readonly_fields = ["status", "done", "total", "file", "error", "created_by", "created_at", "finished_at"]
