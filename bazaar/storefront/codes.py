"""The error codes of the storefront app (besides core's, ``bazaar.core.codes``).

Every code the app raises is one of these: ``tests/contract/test_api_errors.py`` scans the source.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    DUPLICATE_NAME = "duplicate_name"
    EMPTY_ORDER = "empty_order"
    IDEMPOTENCY_KEY_REQUIRED = "idempotency_key_required"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    ILLEGAL_TRANSITION = "illegal_transition"
    IMAGE_TOO_LARGE = "image_too_large"
    INVALID_CATEGORY = "invalid_category"
    INVALID_CURRENCY = "invalid_currency"
    INVALID_CART_OP = "invalid_cart_op"
    INVALID_CUSTOMER = "invalid_customer"
    INVALID_EMAIL = "invalid_email"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    INVALID_IMAGE = "invalid_image"
    INVALID_LINE = "invalid_line"
    INVALID_NAME = "invalid_name"
    INVALID_PAYMENT_STATUS = "invalid_payment_status"
    INVALID_PRICE = "invalid_price"
    INVALID_QUANTITY = "invalid_quantity"
    INVALID_SHOP_NAME = "invalid_shop_name"
    INVALID_SLUG = "invalid_slug"
    INVALID_STATUS = "invalid_status"
    INVALID_STOCK = "invalid_stock"
    INVALID_TIMEZONE = "invalid_timezone"
    NO_SHOP = "no_shop"
    ORDER_NOT_FOUND = "order_not_found"
    OUT_OF_STOCK = "out_of_stock"
    PRICE_ABOVE_MRP = "price_above_mrp"
    PRICE_CHANGED = "price_changed"
    PRODUCT_CHANGED = "product_changed"
    PRODUCT_NOT_FOUND = "product_not_found"
    PRODUCT_UNAVAILABLE = "product_unavailable"
    SHOP_EXISTS = "shop_exists"
    SHOP_NOT_FOUND = "shop_not_found"
    SLUG_TAKEN = "slug_taken"
    TOO_MANY_LINES = "too_many_lines"
    UNKNOWN_FIELDS = "unknown_fields"
    UNKNOWN_PRODUCT = "unknown_product"
