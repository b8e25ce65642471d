"""End to end in real headless Chromium: a vendor signs up, adds products, toggles one unavailable, opens the
public link; a customer orders; the vendor sees the order and changes its status; the store shows the stock.
Screenshots of every page go to docs/screenshots/storefront-*.png."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bazaar.core.testing import CHROMIUM, CHROMIUM_ARGS, save_screenshot

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright runs an event loop in this thread

SHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


@pytest.fixture
def page(live_server: Any) -> Any:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 900}, base_url=live_server.url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def _shot(page: Any, name: str) -> None:
    save_screenshot(page, SHOTS / f"storefront-{name}.png")


def _add_product(page: Any, name: str, mrp: str, price: str, stock: str) -> None:
    page.click("#add-product")
    page.fill("#id_name", name)
    page.fill("#id_mrp", mrp)
    page.fill("#id_price", price)
    page.fill("#id_stock", stock)
    page.click("button[type=submit]:has-text('Save')")
    page.wait_for_url("**/storefront/products/")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_vendor_and_customer_journey(page: Any) -> None:
    page.goto("/storefront/")
    _shot(page, "1-landing")
    page.click("#vendor-signup")
    page.fill("#id_username", "priya")
    page.fill("#id_email", "priya@example.com")
    page.fill("#id_password", "turmeric-and-tea-77")
    page.fill("#id_password_again", "turmeric-and-tea-77")
    page.fill("#id_shop_name", "Priya's Pantry")
    page.fill("#id_slug", "priyas-pantry")
    _shot(page, "2-signup")
    page.click("button[type=submit]")
    page.wait_for_url("**/storefront/")
    page.click("a:has-text('Products')")
    _add_product(page, "Assam Tea", "250", "220", "8")
    _add_product(page, "Cardamom", "400", "380", "10")
    _add_product(page, "Saffron", "900", "850", "2")
    # One-click availability toggle: Saffron becomes unavailable.
    page.click("tr[data-product='Saffron'] button.toggle")
    page.wait_for_url("**/storefront/products/")
    assert page.inner_text("tr[data-product='Saffron'] button.toggle") == "No"
    _shot(page, "3-products")

    # The customer (a fresh browser context: no session) opens the public link and orders.
    customer = page.context.browser.new_context(
        viewport={"width": 1100, "height": 900}, base_url=page.url.split("/storefront")[0]
    )
    cp = customer.new_page()
    cp.goto("/s/priyas-pantry/")
    assert "Unavailable" in cp.inner_text("tr[data-product='Saffron']")
    assert "In stock (8)" in cp.inner_text("tr[data-product='Assam Tea']")
    assert len(cp.input_value("#idempotency_key")) >= 32  # filled in by the page's script
    cp.fill("tr[data-product='Assam Tea'] input[type=number]", "2")
    cp.fill("tr[data-product='Cardamom'] input[type=number]", "1")
    cp.fill("#customer_name", "Ravi Kumar")
    cp.fill("#phone", "+91 98765 43210")
    cp.fill("#address", "12 Residency Road, Bengaluru")
    _shot(cp, "4-store")
    cp.click("#place-order")
    cp.wait_for_url("**/orders/BZ-*/")
    number = cp.inner_text("#order-number")
    assert number.startswith("BZ-")
    _shot(cp, "5-confirmation")
    # The store page shows the new stock at once.
    cp.goto("/s/priyas-pantry/")
    assert "In stock (6)" in cp.inner_text("tr[data-product='Assam Tea']")

    # The vendor sees the order and moves it along.
    page.click("a:has-text('Orders')")
    page.click(f"a:has-text('{number}')")
    assert "Ravi Kumar" in page.content()
    _shot(page, "6-order")
    page.click("button[data-status='confirmed']")
    assert page.inner_text("#order-status") == "Confirmed"
    page.click("button[data-status='cancelled']")
    assert page.inner_text("#order-status") == "Cancelled"
    cp.goto("/s/priyas-pantry/")
    assert "In stock (8)" in cp.inner_text("tr[data-product='Assam Tea']")  # cancelling returned the stock
    page.click("a:has-text('Dashboard')")
    assert "<svg" in page.content()
    _shot(page, "7-dashboard")
    customer.close()

    # The demo vendor's dashboard: 30 days of past orders in the server-side SVG chart.
    from bazaar.storefront import demo

    demo.load()
    vendor = page.context.browser.new_context(
        viewport={"width": 1100, "height": 900}, base_url=cp.url.split("/s/")[0]
    )
    vp = vendor.new_page()
    vp.goto("/accounts/login/?next=/storefront/")
    vp.fill("#id_username", demo.DEMO_VENDOR[0])
    vp.fill("#id_password", demo.DEMO_VENDOR[1])
    vp.click("button[type=submit]")
    vp.wait_for_url("**/storefront/")
    assert vp.locator("svg.chart rect[opacity]").count() == 30
    _shot(vp, "8-demo-dashboard")
    vendor.close()
