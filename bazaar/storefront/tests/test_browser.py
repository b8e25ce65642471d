"""The storefront in real headless Chromium at a phone's size (390×844): a vendor signs up, adds a product with a
photo, sees the link to share; a shopper browses, searches, filters, adds to the cart, checks out with an error
then succeeds, and follows the order. Every page must fit 390 px (no sideways scrolling) with no serious axe-core
violation (``assert_page_fits``). Screenshots (``make screenshots`` only) go to docs/screenshots/storefront-*.png."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest

from bazaar.core.testing import CHROMIUM, CHROMIUM_ARGS, assert_page_fits, save_screenshot

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright runs an event loop in this thread

SHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser(live_server: Any, settings: Any, tmp_path: Path) -> Any:
    from playwright.sync_api import sync_playwright

    settings.MEDIA_ROOT = tmp_path
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser, live_server.url
        finally:
            browser.close()


def _page(browser: Any, base: str) -> Any:
    ctx = browser.new_context(viewport=PHONE, base_url=base, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    return page


def _check(page: Any, name: str) -> None:
    assert_page_fits(page)
    # Nothing hides to the right inside a table either (a table that scrolls by itself passes scrollWidth).
    right = page.evaluate(
        "() => Math.max(0, ...[...document.querySelectorAll('main td')].map(e => e.getBoundingClientRect().right))"
    )
    assert right <= PHONE["width"], f"{page.url}: a table cell ends at {right}px"
    save_screenshot(page, SHOTS / f"storefront-{name}.png", width=PHONE["width"])


def _png(width: int = 900, height: int = 600) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (180, 90, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _add_product(page: Any, name: str, price: str, mrp: str, stock: str, category: str, photo: bool) -> None:
    page.click("#add-product")
    _check(page, "product-new") if photo else None
    page.fill("#id_name", name)
    page.fill("#id_category", category)
    page.fill("#id_mrp", mrp)
    page.fill("#id_price", price)
    page.fill("#id_stock", stock)
    if photo:
        page.set_input_files("#id_image", {"name": "tea.png", "mimeType": "image/png", "buffer": _png()})
    with page.expect_navigation():
        page.click("button[type=submit]:has-text('Save')")
    assert page.url.endswith("/storefront/products/")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_vendor_then_shopper_on_a_phone(browser: Any) -> None:
    chromium, base = browser
    vendor = _page(chromium, base)
    vendor.goto("/storefront/signup/")
    _check(vendor, "signup")
    vendor.fill("#id_username", "priya")
    vendor.fill("#id_email", "priya@example.com")
    vendor.fill("#id_password", "turmeric-and-tea-77")
    vendor.fill("#id_password_again", "turmeric-and-tea-77")
    vendor.fill("#id_shop_name", "Priya's Pantry")
    vendor.fill("#id_slug", "priyas-pantry")
    with vendor.expect_navigation():
        vendor.click("button[type=submit]")
    _check(vendor, "dashboard")
    # The link to share: absolute, a WhatsApp link, a QR code, and a copy button (site.js).
    assert vendor.input_value("#store-url").endswith("/s/priyas-pantry/")
    assert vendor.input_value("#store-url").startswith("http")
    assert vendor.get_attribute("#whatsapp", "href").startswith("https://wa.me/?text=")
    assert vendor.locator("#share svg").count() == 1
    assert vendor.is_visible("button[data-copy]")
    assert vendor.is_visible("#first-product")  # the empty dashboard says what to do next
    vendor.goto("/storefront/orders/")
    assert "No orders yet." in vendor.inner_text("#no-orders")  # says what to do next
    _check(vendor, "orders-empty")
    vendor.goto("/storefront/")
    vendor.click("a:has-text('Products')")
    _check(vendor, "products-empty")
    _add_product(vendor, "Assam Tea", "220", "250", "8", "Tea", photo=True)
    _add_product(vendor, "Green Tea", "180", "180", "3", "Tea", photo=False)
    _add_product(vendor, "Cardamom", "380", "400", "10", "Spices", photo=False)
    thumb = vendor.locator("tr[data-product='Assam Tea'] img.thumb")
    assert thumb.get_attribute("loading") == "lazy"
    assert vendor.evaluate("img => img.complete && img.currentSrc", thumb.element_handle()).endswith(".jpg")
    _check(vendor, "products")
    vendor.goto("/storefront/shop/")
    _check(vendor, "shop-settings")

    shopper = _page(chromium, base)
    shopper.goto("/s/priyas-pantry/")
    _check(shopper, "store")
    card = shopper.locator("li.product[data-product='Assam Tea']")
    assert "12% off" in card.inner_text()
    assert "In stock" in card.inner_text()
    assert card.locator("img.thumb").evaluate("img => img.complete && img.naturalWidth > 0")
    assert "Only 3 left" in shopper.locator("li.product[data-product='Green Tea']").inner_text()
    # Search, then a category chip.
    shopper.fill("#store-q", "cardamom")
    with shopper.expect_navigation():
        shopper.press("#store-q", "Enter")
    assert [n.get_attribute("data-product") for n in shopper.locator("li.product").all()] == ["Cardamom"]
    shopper.goto("/s/priyas-pantry/")
    with shopper.expect_navigation():
        shopper.click(".chips a:has-text('Tea')")
    assert shopper.locator("li.product").count() == 2
    _check(shopper, "store-category")
    # Add to cart with the steppers (site.js): the header shows the running total without a reload.
    card = shopper.locator("li.product[data-product='Assam Tea']")
    card.locator("button[aria-label^='One more']").click()
    card.locator("button[type=submit]").click()
    assert re.search(r"2 items · INR 440\.00", shopper.inner_text("#cart-link"))
    shopper.locator("li.product[data-product='Green Tea'] button[type=submit]").click()
    assert "3 items · INR 620.00" in shopper.inner_text("#cart-link")
    with shopper.expect_navigation():
        shopper.click("#go-cart")
    assert shopper.inner_text("#cart-total") == "INR 620.00"
    # The cart's own steppers are plain form posts.
    with shopper.expect_navigation():
        shopper.click("li[data-product='Green Tea'] button[aria-label^='One more']")
    assert shopper.inner_text("#cart-total") == "INR 800.00"
    _check(shopper, "cart")
    # Checkout: a bad phone number first — the cart page again, the error at the field, what was typed kept.
    shopper.fill("#customer_name", "Ravi Kumar")
    shopper.fill("#phone", "12")
    shopper.fill("#address", "12 Residency Road, Bengaluru")
    with shopper.expect_navigation():
        shopper.click("#place-order")
    assert "A phone number" in shopper.inner_text("#err-phone")
    assert shopper.input_value("#customer_name") == "Ravi Kumar"
    _check(shopper, "checkout-error")
    shopper.fill("#phone", "+91 98765 43210")
    with shopper.expect_navigation():
        shopper.click("#place-order")
    assert shopper.inner_text("#order-number").startswith("BZ-")
    assert "Placed" in shopper.inner_text("#timeline")
    _check(shopper, "order-status")
    status_url = shopper.url
    # The store shows the new stock state at once (Green Tea: 3 → 1 left).
    shopper.goto("/s/priyas-pantry/")
    assert "Only 1 left" in shopper.locator("li.product[data-product='Green Tea']").inner_text()
    assert shopper.inner_text("#cart-link").strip() == "Cart"  # the cart was emptied

    # The vendor sees the order (with the photo) and confirms it; the customer's page shows the step.
    vendor.goto("/storefront/orders/")
    _check(vendor, "orders")
    with vendor.expect_navigation():
        vendor.click("a:has-text('BZ-')")
    _check(vendor, "order")
    with vendor.expect_navigation():
        vendor.click("button[data-status='confirmed']")
    assert vendor.inner_text("#order-status") == "Confirmed"
    shopper.goto(status_url)
    assert "Confirmed" in shopper.inner_text("#timeline")
    # Cancelling asks first, on a page of its own; "Go back" changes nothing.
    with vendor.expect_navigation():
        vendor.click("a[data-status='cancelled']")
    _check(vendor, "confirm-cancel")
    with vendor.expect_navigation():
        vendor.click("#confirm-no")
    assert vendor.inner_text("#order-status") == "Confirmed"
    with vendor.expect_navigation():
        vendor.click("a[data-status='cancelled']")
    with vendor.expect_navigation():
        vendor.click("#confirm-yes")
    assert vendor.inner_text("#order-status") == "Cancelled"
    shopper.goto(status_url)
    assert "Cancelled" in shopper.inner_text("#timeline")
    vendor.goto("/storefront/")
    _check(vendor, "dashboard-with-order")
    # The chart reads on a phone: its day labels are at least 9 px tall at 390 px, and it names the time zone.
    day = vendor.locator("svg.chart text.day").first.bounding_box()
    assert day is not None
    assert day["height"] >= 9, day
    assert "Days in Asia/Kolkata (IST)" in vendor.inner_text("#chart")
