"""What the public page says about a product's stock. One rule for the page and for the order's decision whether
the page changed: exact counts only at or below the low-stock threshold, so most orders leave the page's bytes
as they were and need not drop them."""

from __future__ import annotations

from bazaar.storefront import conf


def stock_state(stock: int, is_available: bool) -> tuple[str, str]:
    """(css class, words) of the badge."""
    if not is_available:
        return "bad", "Unavailable"
    if stock <= 0:
        return "bad", "Out of stock"
    if stock <= conf.low_stock_threshold():
        return "warn", f"Only {stock} left"
    return "ok", "In stock"


def page_changes(before: int, after: int) -> bool:
    """Whether taking stock from ``before`` to ``after`` (of an available product) changes the public page."""
    return stock_state(before, True) != stock_state(after, True)
