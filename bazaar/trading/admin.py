from typing import Any

from django.contrib import admin

from bazaar.trading.models import ImportJob, OfferItem, OwnershipChange, Pokemon, TradeOffer, Trainer


@admin.register(Trainer)
class TrainerAdmin(admin.ModelAdmin[Trainer]):
    list_display = ("public_id", "first_name", "last_name", "date_of_birth", "user")
    search_fields = ("public_id", "first_name", "last_name")
    raw_id_fields = ("user",)


class HistoryInline(admin.TabularInline[OwnershipChange, Pokemon]):
    model = OwnershipChange
    fk_name = "pokemon"
    extra = 0
    can_delete = False
    readonly_fields = ("from_trainer", "to_trainer", "at", "cause", "offer")

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Pokemon)
class PokemonAdmin(admin.ModelAdmin[Pokemon]):
    """Read-mostly: owner changes must go through services (history, offers, cache), so owner is read-only."""

    list_display = ("public_id", "nickname", "species", "level", "owner", "date_of_ownership")
    list_filter = ("species",)
    search_fields = ("public_id", "nickname", "species", "owner__public_id")
    readonly_fields = ("owner",)
    inlines = [HistoryInline]

    def has_add_permission(self, request: Any) -> bool:
        return False


class OfferItemInline(admin.TabularInline[OfferItem, TradeOffer]):
    model = OfferItem
    extra = 0
    raw_id_fields = ("pokemon",)


@admin.register(TradeOffer)
class TradeOfferAdmin(admin.ModelAdmin[TradeOffer]):
    list_display = ("id", "proposer", "receiver", "state", "created_at", "expires_at")
    list_filter = ("state",)
    readonly_fields = ("state", "decided_at", "reason")
    inlines = [OfferItemInline]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin[ImportJob]):
    list_display = ("id", "kind", "state", "dry_run", "rows_validated", "rows_written", "created_at")
    list_filter = ("state", "kind")
    readonly_fields = [f.name for f in ImportJob._meta.fields]
