"""The KV console in headless Chromium at phone width (390 px), by keyboard where a person types: staff create a
tenant, a key, edit it while someone else changes it (the conflict shows both values, saving again wins), read its
history, watch a prefix live (console.js long-polls watch.json and shows a change made elsewhere), delete with a
confirmation, and issue a tenant API key (shown once) and revoke it. Every page fits 390 px with no serious axe-core
violation. Screenshots (docs/screenshots/kv-*.png) only with BAZAAR_SCREENSHOTS=1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bazaar.core.testing import assert_page_fits, chromium_browser, save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright runs an event loop in this thread
PHONE = {"width": 390, "height": 844}
SECRET_WORD = "console-walk-password-1"


@pytest.fixture
def chromium(live_server: Any) -> Iterator[Any]:
    with chromium_browser() as b:
        yield b


def fits(page: Any, name: str) -> None:
    """390 px without sideways scrolling, no serious axe-core violation; a screenshot under make screenshots."""
    assert_page_fits(page, width=PHONE["width"])
    if os.environ.get("BAZAAR_SCREENSHOTS") == "1":
        shots = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
        save_screenshot(page, shots / f"kv-{name}.png", width=PHONE["width"])


def submit(page: Any, selector: str) -> None:
    """Focus a button and press Enter, as a keyboard user does; wait for the page it leads to."""
    page.focus(selector)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_staff_console_end_to_end(live_server: Any, chromium: Any) -> None:
    from bazaar.accounts.models import User
    from bazaar.kvstore import services
    from bazaar.kvstore.models import Tenant

    User.objects.create_user(username="root", password=SECRET_WORD, is_staff=True)
    context = chromium.new_context(viewport=PHONE, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/accounts/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", SECRET_WORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")

    # A tenant, created from the tenants page.
    page.goto("/kv/")
    fits(page, "tenants")
    page.focus("#id_slug")
    page.keyboard.type("shop")
    submit(page, "#create-tenant")
    assert page.url.endswith("/kv/t/shop/")
    fits(page, "browse-empty")
    tenant = Tenant.objects.get(slug="shop")

    # A key: created, shown as pretty JSON with its version and revision.
    page.click("text=New key")
    page.fill("#id_key", "config/db/a-rather-long-key-name-that-must-wrap-on-a-phone-screen")
    page.fill("#id_value", '{"host": "db1", "port": 5432}')
    submit(page, "#save")
    assert '"port": 5432' in page.inner_text("pre.kv-json")
    assert "Saved" in page.inner_text(".messages")
    fits(page, "entry")

    # Edit it while someone else changes it: a conflict with both values, nothing saved; saving again wins.
    page.click("text=Edit")
    page.fill("#id_value", '{"host": "mine"}')
    key = "config/db/a-rather-long-key-name-that-must-wrap-on-a-phone-screen"
    services.entry_set(tenant_id=tenant.pk, key=key, value={"host": "theirs"})
    submit(page, "#save")
    conflict = page.inner_text(".kv-conflict")
    assert '"mine"' in conflict
    assert '"theirs"' in conflict
    fits(page, "conflict")
    submit(page, "#save")
    assert '"host": "mine"' in page.inner_text("pre.kv-json")

    # Its history, newest first.
    page.click("text=History")
    rows = page.locator(".kv-table tbody tr")
    assert rows.count() == 3
    assert '"mine"' in rows.nth(0).inner_text()
    fits(page, "history")

    # Watch the prefix live: a change made elsewhere appears without reloading.
    page.goto("/kv/t/shop/watch/?prefix=config/")
    page.wait_for_function("document.getElementById('kv-watch-status').textContent.startsWith('Live')")
    services.entry_set(tenant_id=tenant.pk, key="config/feature", value=True)
    services.entry_set(tenant_id=tenant.pk, key="other", value=1)  # outside the prefix: not shown
    page.wait_for_selector("#kv-watch-events li >> text=config/feature")
    assert "other" not in page.inner_text("#kv-watch-events")
    fits(page, "watch")

    # Delete, after a confirmation page.
    page.goto("/kv/t/shop/")
    page.click("text=config/feature")
    page.click("#delete")
    fits(page, "delete")
    submit(page, "#delete-confirm")
    assert "Deleted" in page.inner_text(".messages")
    assert "config/feature" not in page.inner_text(".kv-table")

    # An API key, shown once, then revoked.
    page.click("text=API keys")
    page.fill("#id_name", "deploy")
    submit(page, "#create-key")
    secret = page.inner_text("#kv-secret")
    assert secret.startswith("kv_")
    assert services.apikey_authenticate(secret) is not None
    fits(page, "apikeys")
    page.goto("/kv/t/shop/apikeys/")
    assert secret not in page.content()
    submit(page, "button[aria-label^='Revoke key deploy']")
    assert "revoked" in page.inner_text(".messages")
    assert services.apikey_authenticate(secret) is None
    context.close()
