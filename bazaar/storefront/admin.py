from django.contrib import admin

from bazaar.storefront.models import (
    Order,
    OrderEvent,
    OrderIdempotencyKey,
    OrderItem,
    Product,
    Shop,
    ShopSlugHistory,
)


class ProductInline(admin.TabularInline):
    model = Product
    extra = 0
    fields = ("name", "price", "mrp", "stock", "is_available", "is_listed", "is_archived")


@admin.register(Shop)
class ShopAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "owner", "currency", "created_at")
    search_fields = ("name", "slug", "owner__username")
    inlines = [ProductInline]


@admin.register(ShopSlugHistory)
class ShopSlugHistoryAdmin(admin.ModelAdmin):
    list_display = ("slug", "shop", "created_at")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
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


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    readonly_fields = ("product", "product_name", "unit_price", "quantity", "line_total")


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    extra = 0
    readonly_fields = ("kind", "value", "at", "actor")
    can_delete = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "shop", "status", "payment_status", "total", "currency", "created_at")
    list_filter = ("status", "payment_status")
    search_fields = ("number", "customer_name", "phone", "shop__slug")
    inlines = [OrderItemInline, OrderEventInline]
    # Status changes go through the services (stock, cache); the admin shows them.
    readonly_fields = ("status", "total", "currency", "number", "shop")


@admin.register(OrderIdempotencyKey)
class OrderIdempotencyKeyAdmin(admin.ModelAdmin):
    list_display = ("key", "shop", "order", "created_at")
    readonly_fields = ("key", "shop", "order", "request_hash")
