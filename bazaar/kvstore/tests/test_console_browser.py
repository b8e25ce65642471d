"""The KV console in headless Chromium at phone width (390 px), by keyboard where a person types: staff create a
tenant, a key, edit it while someone else changes it (the conflict shows both values, saving again wins), read its
history, watch a prefix live (console.js long-polls watch.json and shows a change made elsewhere), delete with a
confirmation, and issue a tenant API key (shown once) and revoke it. A tenant's editor who is not staff does the
daily work (paging by prefix, create, edit, a conflict with another client over the HTTP API, history, delete,
watch) and is refused the admin pages; a tenant's admin switches tenants, creates an API key and invites a member.
Every page fits 390 px with no serious axe-core violation. Screenshots (docs/screenshots/kv-*.png) only with
BAZAAR_SCREENSHOTS=1."""

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


def sign_in(page: Any, username: str) -> None:
    """The login page, by keyboard."""
    page.goto("/accounts/login/")
    page.focus("#id_username")
    page.keyboard.type(username)
    page.focus("#id_password")
    page.keyboard.type(SECRET_WORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def put_over_http(base: str, secret: str, key: str, value: Any) -> int:
    """Another client: a PUT through the tenant API with the tenant's API key (not the person's session)."""
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{base}/api/kv/keys/{key}",
        data=json.dumps({"value": value}).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return int(r.status)


def test_tenant_editor_console_end_to_end(live_server: Any, chromium: Any) -> None:
    """A tenant's editor who is not staff: signs in, browses by prefix with paging, creates a key, edits it, meets
    a version conflict with another client (both values shown), reads the history, deletes, watches a prefix and
    sees another client's change appear; the API keys page (admins only) is refused with a message."""
    from bazaar.accounts.models import User
    from bazaar.kvstore import services
    from bazaar.kvstore.models import Entry

    shop = services.tenant_create(slug="shop")
    services.tenant_create(slug="secret-lab")  # another tenant: never shown to her
    root = User.objects.create_user(username="root", is_staff=True)
    User.objects.create_user(username="eve", password=SECRET_WORD)
    services.member_add(tenant_id=shop.pk, who="eve", role="editor", actor=root)
    for i in range(30):
        services.entry_set(tenant_id=shop.pk, key=f"app/k{i:02d}", value={"i": i})
    other_client = services.apikey_create(tenant_id=shop.pk, name="other client").secret

    context = chromium.new_context(viewport=PHONE, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, "eve")

    # Her tenants: only shop, with her role; the keys by prefix, 25 a page.
    page.goto("/kv/")
    assert page.inner_text("#kv-my-tenants").split() == ["shop", "shop", "·", "editor"]
    assert "secret-lab" not in page.content()
    fits(page, "member-tenants")
    submit(page, "#kv-my-tenants a")
    assert page.url.endswith("/kv/t/shop/")
    assert page.inner_text("#kv-role") == "you: editor"
    page.focus("#id_prefix")
    page.keyboard.type("app/")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    rows = page.locator(".kv-table tbody tr")
    assert rows.count() == 25
    assert rows.nth(0).inner_text().startswith("app/k00")
    fits(page, "member-browse")
    submit(page, "text=Next page")
    assert [r.split("\t")[0] for r in rows.all_inner_texts()] == [f"app/k{i}" for i in range(25, 30)]

    # A new key with a TTL: pretty JSON, version, revision and TTL left.
    submit(page, "nav.kv-nav >> text=New key")
    page.fill("#id_key", "app/new")
    page.fill("#id_value", '{"colour": "red"}')
    page.fill("#id_ttl", "300")
    submit(page, "#save")
    assert '"colour": "red"' in page.inner_text("pre.kv-json")
    meta = page.inner_text(".kv-meta")
    assert "Version\n1" in meta.replace("\t", "\n")
    assert "Mod revision\n31" in meta.replace("\t", "\n")
    assert " s (expires " in meta
    fits(page, "member-entry")

    # Edit at the version read.
    submit(page, "a.button:text-is('Edit')")
    page.fill("#id_value", '{"colour": "green"}')
    submit(page, "#save")
    assert '"colour": "green"' in page.inner_text("pre.kv-json")

    # Another client changes it while she edits: both values shown, nothing saved; saving again keeps hers.
    submit(page, "a.button:text-is('Edit')")
    page.fill("#id_value", '{"colour": "mine"}')
    assert put_over_http(live_server.url, other_client, "app/new", {"colour": "theirs"}) == 200
    submit(page, "#save")
    conflict = page.inner_text(".kv-conflict")
    assert '"mine"' in conflict
    assert '"theirs"' in conflict
    assert Entry.objects.get(key="app/new").value == '{"colour":"theirs"}'
    fits(page, "member-conflict")
    submit(page, "#save")
    assert '"colour": "mine"' in page.inner_text("pre.kv-json")

    # Its history, newest first: hers, theirs, green, red.
    submit(page, "text=History")
    history = page.locator(".kv-table tbody tr").all_inner_texts()
    assert [("mine" in h, "theirs" in h, "green" in h, "red" in h) for h in history] == [
        (True, False, False, False),
        (False, True, False, False),
        (False, False, True, False),
        (False, False, False, True),
    ]
    fits(page, "member-history")

    # Delete after a confirmation.
    submit(page, "h1 a.kv-key")
    submit(page, "#delete")
    submit(page, "#delete-confirm")
    assert "Deleted" in page.inner_text(".messages")

    # Watch app/: another client's change appears without reloading; one outside the prefix does not.
    submit(page, "nav.kv-nav >> text=Watch")
    page.focus("#id_prefix")
    page.keyboard.type("app/")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('kv-watch-status').textContent.startsWith('Live')")
    put_over_http(live_server.url, other_client, "elsewhere", 1)
    put_over_http(live_server.url, other_client, "app/live", {"on": True})
    page.wait_for_selector("#kv-watch-events li >> text=app/live")
    assert "elsewhere" not in page.inner_text("#kv-watch-events")
    fits(page, "member-watch")

    # Admin pages are refused with a message; a tenant she is not in is the 404 of a missing one.
    assert "API keys" not in page.inner_text("nav.kv-nav")
    response = page.goto("/kv/t/shop/apikeys/")
    assert response is not None
    assert response.status == 403
    assert "only admins may manage API keys and members" in page.inner_text(".kv-error")
    fits(page, "member-denied")
    response = page.goto("/kv/t/secret-lab/")
    assert response is not None
    assert response.status == 404
    context.close()


def test_tenant_admin_creates_a_key_and_invites_a_member(live_server: Any, chromium: Any) -> None:
    """A tenant's admin who is not staff: switches between their tenants, creates an API key (shown once),
    invites an existing user by e-mail, changes their role, and cannot remove themselves as the last admin."""
    from bazaar.accounts.models import User
    from bazaar.kvstore import access, services
    from bazaar.kvstore.models import TenantMember

    shop = services.tenant_create(slug="shop")
    lab = services.tenant_create(slug="lab")
    root = User.objects.create_user(username="root", is_staff=True)
    User.objects.create_user(username="ada", password=SECRET_WORD)
    newbie = User.objects.create_user(username="newbie", email="newbie@example.com", password=SECRET_WORD)
    services.member_add(tenant_id=shop.pk, who="ada", role="admin", actor=root)
    services.member_add(tenant_id=lab.pk, who="ada", role="viewer", actor=root)

    context = chromium.new_context(viewport=PHONE, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, "ada")

    # Two tenants: the switcher, opened and followed by keyboard.
    page.goto("/kv/t/lab/")
    assert page.inner_text("#kv-role") == "you: viewer"
    page.focus(".kv-switch summary")
    page.keyboard.press("Enter")
    submit(page, ".kv-switch >> text=shop")
    assert page.url.endswith("/kv/t/shop/")
    assert page.inner_text("#kv-role") == "you: admin"
    fits(page, "admin-browse")

    # An API key, shown once.
    submit(page, "nav.kv-nav >> text=API keys")
    page.focus("#id_name")
    page.keyboard.type("deploy")
    submit(page, "#create-key")
    secret = page.inner_text("#kv-secret")
    principal = services.apikey_authenticate(secret)
    assert principal is not None
    assert principal.tenant_id == shop.pk
    fits(page, "admin-apikeys")
    page.reload()
    assert secret not in page.content()

    # Invite an existing user by e-mail as an editor, then make them a viewer.
    submit(page, "nav.kv-nav >> text=Members")
    page.focus("#id_who")
    page.keyboard.type("newbie@example.com")
    page.select_option("#id_role", "editor")
    submit(page, "#add-member")
    assert "newbie added as editor" in page.inner_text(".messages")
    assert access.role_of(user=newbie, tenant_id=shop.pk) == "editor"
    fits(page, "admin-members")
    member = TenantMember.objects.get(user=newbie)
    page.select_option(f"#role_{member.pk}", "viewer")
    submit(page, "button[aria-label='Change role of newbie']")
    assert "newbie is now viewer" in page.inner_text(".messages")

    # The last admin cannot leave: a clear message, nothing changed.
    before = list(TenantMember.objects.order_by("pk").values_list("user__username", "role"))
    submit(page, "button[aria-label='Remove ada']")
    assert "last admin" in page.inner_text(".kv-error")
    assert list(TenantMember.objects.order_by("pk").values_list("user__username", "role")) == before
    fits(page, "admin-last-admin")
    context.close()
