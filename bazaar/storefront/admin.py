from typing import Any

from django import forms
from django.contrib import admin
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest

from bazaar.core.errors import DomainError
from bazaar.storefront.models import (
    Order,
    OrderEvent,
    OrderIdempotencyKey,
    OrderItem,
    Product,
    Shop,
    ShopSlugHistory,
)
from bazaar.storefront.services import products as product_services


class ProductInline(admin.TabularInline[Product, Shop]):
    model = Product
    extra = 0
    fields = ("name", "price", "mrp", "stock", "is_available", "is_listed", "is_archived")


@admin.register(Shop)
class ShopAdmin(admin.ModelAdmin[Shop]):
    list_display = ("name", "slug", "owner", "currency", "created_at")
    search_fields = ("name", "slug", "owner__username")
    inlines = [ProductInline]


@admin.register(ShopSlugHistory)
class ShopSlugHistoryAdmin(admin.ModelAdmin[ShopSlugHistory]):
    list_display = ("slug", "shop", "created_at")


class ProductAdminForm(forms.ModelForm[Product]):
    """A photo uploaded by staff goes through the vendor's checks (size, type, a real decode) and gets the same
    thumbnails, made here before anything is written: one code path (``services.products.image_check`` and
    ``image_attach``), so the store never shows a placeholder for a photo the admin accepted."""

    class Meta:
        model = Product
        # The thumbnails' names and size are made from the photo, never typed.
        fields = (
            "shop", "name", "description", "category", "mrp", "price", "stock",
            "is_available", "is_listed", "is_archived", "image",
        )  # fmt: skip

    def clean_image(self) -> Any:
        image = self.cleaned_data.get("image")
        self.thumbs = None
        if isinstance(image, UploadedFile):
            try:
                self.thumbs = product_services.image_check(image)
            except DomainError as exc:
                raise forms.ValidationError(exc.message, code=exc.code)
        return image


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin[Product]):
    form = ProductAdminForm
    list_display = (
        "name",
        "shop",
        "category",
        "price",
        "mrp",
        "stock",
        "is_available",
        "is_listed",
        "is_archived",
    )
    list_filter = ("is_available", "is_listed", "is_archived")
    search_fields = ("name", "shop__slug")

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        if "image" in form.changed_data:
            image = form.cleaned_data.get("image")
            if isinstance(image, UploadedFile) and form.thumbs is not None:
                product_services.image_attach(obj, image, form.thumbs)
            elif not image:  # "Clear" ticked
                product_services.image_detach(obj)
        super().save_model(request, obj, form, change)


class OrderItemInline(admin.TabularInline[OrderItem, Order]):
    model = OrderItem
    extra = 0
    readonly_fields = ("product", "product_name", "unit_price", "quantity", "line_total")


class OrderEventInline(admin.TabularInline[OrderEvent, Order]):
    model = OrderEvent
    extra = 0
    readonly_fields = ("kind", "value", "at", "actor")
    can_delete = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin[Order]):
    list_display = ("number", "shop", "status", "payment_status", "total", "currency", "created_at")
    list_filter = ("status", "payment_status")
    search_fields = ("number", "customer_name", "phone", "shop__slug")
    inlines = [OrderItemInline, OrderEventInline]
    # Status changes go through the services (stock, cache); the admin shows them.
    readonly_fields = ("status", "total", "currency", "number", "shop")


@admin.register(OrderIdempotencyKey)
class OrderIdempotencyKeyAdmin(admin.ModelAdmin[OrderIdempotencyKey]):
    list_display = ("key", "shop", "order", "created_at")
    readonly_fields = ("key", "shop", "order", "request_hash")
