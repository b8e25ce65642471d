"""Storefront writes, one module per entity; re-exported here."""

from bazaar.storefront.services.orders import (
    OrderLine,
    Placed,
    order_place,
    order_set_payment,
    order_set_status,
)
from bazaar.storefront.services.products import (
    owner_shop,
    product_create,
    product_delete,
    product_toggle_available,
    product_update,
)
from bazaar.storefront.services.shops import shop_create, shop_update, vendor_signup

__all__ = [
    "OrderLine",
    "Placed",
    "order_place",
    "order_set_payment",
    "order_set_status",
    "owner_shop",
    "product_create",
    "product_delete",
    "product_toggle_available",
    "product_update",
    "shop_create",
    "shop_update",
    "vendor_signup",
]
