"""The KV console pages: who may open them, browse with paging, view, create/edit with compare-and-swap (a stale
edit shows both values and writes nothing), delete with confirmation, history, the session long-poll, tenants and
API keys. Every refusal asserts that nothing was written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from bazaar.kvstore import services
from bazaar.kvstore.models import Change, Entry, Tenant, TenantApiKey

pytestmark = pytest.mark.django_db


#: The site's 404 page (templates/404.html): a missing tenant, or one the user is not a member of.
NOT_FOUND_PAGE = "We could not find that page"


def assert_page_refused(r: Any, status: int, text: str, code: str | None = None) -> None:
    """A refused console page or form: the status and the reason, visible on the page (with the service's
    stable code beside the message, where the console shows it)."""
    assert r.status_code == status, r.content
    html = r.content.decode()
    assert text in html, html
    if code is not None:
        assert f'<span class="muted">({code})</span>' in html, html


@pytest.fixture
def staff(make_user: Any) -> Client:
    client = Client()
    client.force_login(make_user("root", is_staff=True))
    return client


@pytest.fixture
def tenant(db: Any) -> Tenant:
    return services.tenant_create(slug="acme")


def state() -> list[tuple[Any, ...]]:
    """Everything the console could write, to assert a refusal changed nothing."""
    return [
        *Entry.objects.order_by("pk").values_list("tenant_id", "key", "value", "version", "expires_at"),
        *Change.objects.order_by("pk").values_list("revision", "key", "op"),
        *Tenant.objects.order_by("pk").values_list("slug", "revision"),
        *TenantApiKey.objects.order_by("pk").values_list("name", "revoked_at"),
    ]


def test_anonymous_goes_to_login_and_a_non_member_sees_no_tenant(make_user: Any, tenant: Tenant) -> None:
    anon = Client()
    r = anon.get("/kv/t/acme/")
    assert r.status_code == 302
    assert r["Location"] == "/accounts/login/?next=/kv/t/acme/"
    user = Client()
    user.force_login(make_user("bob"))
    listing = user.get("/kv/")
    assert listing.status_code == 200
    assert "You are not a member of any tenant yet" in listing.content.decode()
    assert "acme" not in listing.content.decode()
    # A tenant they are not a member of is the 404 of one that does not exist: names do not leak.
    for path in ("/kv/t/acme/", "/kv/t/nope/"):
        assert_page_refused(user.get(path), 404, NOT_FOUND_PAGE)
    before = state()
    r = user.post("/kv/t/acme/edit/", {"key": "k", "value": "1", "version": "0"})
    assert_page_refused(r, 404, NOT_FOUND_PAGE)
    assert state() == before
    refused = user.post("/kv/", {"slug": "mine"})
    assert refused.status_code == 403
    assert "Only staff create tenants." in refused.content.decode()
    assert state() == before


def test_browse_pages_by_prefix_with_a_cursor(staff: Client, tenant: Tenant, settings: Any) -> None:
    for i in range(30):
        services.entry_set(tenant_id=tenant.pk, key=f"app/k{i:02d}", value=i)
    services.entry_set(tenant_id=tenant.pk, key="other", value=1, ttl=60)
    r = staff.get("/kv/t/acme/", {"prefix": "app/"})
    assert r.status_code == 200
    assert r["Cache-Control"] == "private, no-store"
    keys = [i["key"] for i in r.context["items"]]
    assert keys == [f"app/k{i:02d}" for i in range(25)]
    cursor = r.context["page"]["next_cursor"]
    assert cursor
    r2 = staff.get("/kv/t/acme/", {"prefix": "app/", "cursor": cursor})
    assert [i["key"] for i in r2.context["items"]] == [f"app/k{i:02d}" for i in range(25, 30)]
    assert r2.context["page"]["next_cursor"] is None
    bad = staff.get("/kv/t/acme/", {"cursor": "!!"})
    assert bad.status_code == 422
    assert "cursor is not valid" in bad.content.decode()
    assert_page_refused(staff.get("/kv/t/nope/"), 404, NOT_FOUND_PAGE)


def test_view_shows_pretty_json_version_revision_and_ttl(staff: Client, tenant: Tenant) -> None:
    services.entry_set(tenant_id=tenant.pk, key="cfg/db", value={"host": "h", "port": 5432}, ttl=120)
    r = staff.get("/kv/t/acme/entry/", {"key": "cfg/db"})
    assert r.status_code == 200
    entry = r.context["entry"]
    assert (entry["version"], entry["mod_revision"]) == (1, 1)
    assert 119 <= entry["ttl"] <= 120
    assert entry["pretty"] == '{\n  "host": "h",\n  "port": 5432\n}'
    assert "&quot;port&quot;: 5432" in r.content.decode()
    assert_page_refused(
        staff.get("/kv/t/acme/entry/", {"key": "missing"}), 404, "No such key (it does not exist"
    )
    assert_page_refused(
        staff.get("/kv/t/acme/entry/"), 422, "A key must be a non-empty string.", "invalid_key"
    )  # no key: the service's invalid_key


def test_create_then_edit_at_the_version_read(staff: Client, tenant: Tenant) -> None:
    r = staff.post("/kv/t/acme/edit/", {"key": "greeting", "value": '"hi"', "version": "0", "ttl": ""})
    assert r.status_code == 302
    assert r["Location"] == "/kv/t/acme/entry/?key=greeting"
    form = staff.get("/kv/t/acme/edit/", {"key": "greeting"}).context["form"]
    assert (form["value"], form["version"]) == ('"hi"', 1)
    r = staff.post("/kv/t/acme/edit/", {"key": "greeting", "value": '{"a": 1}', "version": "1", "ttl": "30"})
    assert r.status_code == 302
    row = Entry.objects.get(key="greeting")
    assert (row.value, row.version, row.expires_at is not None) == ('{"a":1}', 2, True)


def test_a_stale_edit_shows_both_values_and_writes_nothing(staff: Client, tenant: Tenant) -> None:
    services.entry_set(tenant_id=tenant.pk, key="k", value="first")
    services.entry_set(tenant_id=tenant.pk, key="k", value="theirs")  # someone else, after our read at v1
    before = state()
    r = staff.post("/kv/t/acme/edit/", {"key": "k", "value": '"mine"', "version": "1", "ttl": ""})
    assert r.status_code == 409
    html = r.content.decode()
    assert "Someone changed this key" in html
    assert "&quot;mine&quot;" in html
    assert "&quot;theirs&quot;" in html
    assert r.context["current"]["version"] == 2
    assert 'name="version" value="2"' in html  # saving again keeps mine, knowingly
    assert state() == before
    # creating a key that exists meanwhile is the same conflict
    r = staff.post("/kv/t/acme/edit/", {"key": "k", "value": "1", "version": "0"})
    assert_page_refused(r, 409, "Someone changed this key")
    assert state() == before


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"key": "k", "value": "{not json", "version": "0"}, 422, "The value must be JSON"),
        ({"key": "k", "value": "1", "version": "0", "ttl": "soon"}, 422, "The TTL must be a whole number"),
        (
            {"key": "k", "value": "1", "version": "0", "ttl": "0"},
            422,
            "ttl must be a whole number of seconds",
        ),
        ({"key": "k", "value": "1", "version": "x"}, 422, "The version must be a whole number"),
        ({"key": "", "value": "1", "version": "0"}, 422, "A key must be a non-empty string"),
        ({"key": "a\x01b", "value": "1", "version": "0"}, 422, "control characters"),
        ({"key": "k", "value": json.dumps("x" * 70000), "version": "0"}, 413, "the limit is"),
        ({}, 422, "The value must be JSON"),
    ],
)
def test_bad_input_shows_the_message_and_writes_nothing(
    staff: Client, tenant: Tenant, data: dict[str, str], status: int, message: str, settings: Any
) -> None:
    settings.KVSTORE_MAX_VALUE_BYTES = 65536
    before = state()
    r = staff.post("/kv/t/acme/edit/", data)
    assert r.status_code == status
    assert message in r.content.decode()
    assert state() == before


def test_delete_asks_first_and_refuses_a_changed_key(staff: Client, tenant: Tenant) -> None:
    services.entry_set(tenant_id=tenant.pk, key="gone", value=[1, 2])
    before = state()
    confirm = staff.get("/kv/t/acme/delete/", {"key": "gone"})
    assert confirm.status_code == 200
    assert 'name="version" value="1"' in confirm.content.decode()
    assert state() == before  # asking writes nothing
    services.entry_set(tenant_id=tenant.pk, key="gone", value=[3])  # changed after the confirmation page
    before = state()
    r = staff.post("/kv/t/acme/delete/", {"key": "gone", "version": "1"})
    assert_page_refused(
        r, 409, "Version conflict on &#x27;gone&#x27;: expected 1, current 2.", "version_conflict"
    )
    assert state() == before
    assert_page_refused(
        staff.get("/kv/t/acme/delete/", {"key": "nope"}), 404, "No key &#x27;nope&#x27;.", "key_not_found"
    )
    r = staff.post("/kv/t/acme/delete/", {"key": "nope", "version": "1"})  # deleted since it was read
    assert_page_refused(
        r, 409, "Version conflict on &#x27;nope&#x27;: expected 1, current 0.", "version_conflict"
    )
    assert state() == before
    r = staff.post("/kv/t/acme/delete/", {"key": "gone", "version": "2"})
    assert r.status_code == 302
    assert r["Location"] == "/kv/t/acme/"
    assert not Entry.objects.live(timezone.now()).filter(key="gone").exists()


def test_history_lists_changes_newest_first(staff: Client, tenant: Tenant) -> None:
    services.entry_set(tenant_id=tenant.pk, key="h", value=1)
    services.entry_set(tenant_id=tenant.pk, key="h", value=2)
    services.entry_delete(tenant_id=tenant.pk, key="h")
    r = staff.get("/kv/t/acme/history/", {"key": "h"})
    assert r.status_code == 200
    assert [(c["revision"], c["op"], c["pretty"]) for c in r.context["page"]["items"]] == [
        (3, "delete", ""),
        (2, "set", "2"),
        (1, "set", "1"),
    ]
    assert_page_refused(
        staff.get("/kv/t/acme/history/", {"key": "h", "before": "x"}),
        422,
        "before must be a whole number.",
        "invalid_revision",
    )


def test_watch_page_and_long_poll(staff: Client, tenant: Tenant) -> None:
    services.entry_set(tenant_id=tenant.pk, key="w/a", value=1)
    page = staff.get("/kv/t/acme/watch/", {"prefix": "w/"})
    assert page.status_code == 200
    assert 'data-since="1"' in page.content.decode()
    services.entry_set(tenant_id=tenant.pk, key="w/b", value=2)
    services.entry_set(tenant_id=tenant.pk, key="x", value=3)
    r = staff.get("/kv/t/acme/watch.json", {"since": "1", "prefix": "w/"})
    assert r.status_code == 200
    body = r.json()
    assert [(c["key"], c["revision"], c["value"]) for c in body["items"]] == [("w/b", 2, 2)]
    assert body["revision"] == 3
    older = staff.get("/kv/t/acme/watch/", {"since": "0"})
    assert [c["key"] for c in older.context["page"]["items"]] == ["w/a", "w/b", "x"]
    bad = staff.get("/kv/t/acme/watch.json", {"since": "-1"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_revision"
    assert staff.get("/kv/t/acme/watch.json").json()["code"] == "invalid_revision"


def test_staff_create_tenants_and_keys_shown_once(staff: Client, tenant: Tenant) -> None:
    r = staff.post("/kv/", {"slug": "shop", "name": "The shop"})
    assert r.status_code == 302
    assert r["Location"] == "/kv/t/shop/"
    before = state()
    for slug, status, text, code in (
        ("shop", 409, "Tenant &#x27;shop&#x27; exists.", "tenant_exists"),
        (
            "Bad Slug",
            422,
            "A tenant slug is 1-50 lowercase letters, digits, &#x27;-&#x27; or &#x27;_&#x27;.",
            "invalid_slug",
        ),
        (
            "",
            422,
            "A tenant slug is 1-50 lowercase letters, digits, &#x27;-&#x27; or &#x27;_&#x27;.",
            "invalid_slug",
        ),
    ):
        assert_page_refused(staff.post("/kv/", {"slug": slug}), status, text, code)
    assert state() == before
    r = staff.post("/kv/t/shop/apikeys/", {"name": "deploy"})
    assert r.status_code == 201
    secret = r.context["issued"].secret
    assert secret.startswith("kv_")
    assert secret in r.content.decode()
    assert services.apikey_authenticate(secret) is not None
    listing = staff.get("/kv/t/shop/apikeys/").content.decode()
    assert secret not in listing
    assert secret[:12] in listing
    before = state()
    assert_page_refused(
        staff.post("/kv/t/shop/apikeys/", {"name": " "}), 422, "Give the key a name.", "invalid_name"
    )
    assert state() == before
    key = TenantApiKey.objects.get(name="deploy")
    # a key of another tenant is the 404 of a missing one
    assert_page_refused(staff.post(f"/kv/t/acme/apikeys/{key.pk}/revoke/"), 404, NOT_FOUND_PAGE)
    assert_page_refused(staff.post("/kv/t/shop/apikeys/999999/revoke/"), 404, NOT_FOUND_PAGE)
    assert state() == before
    r = staff.post(f"/kv/t/shop/apikeys/{key.pk}/revoke/")
    assert r.status_code == 302
    assert services.apikey_authenticate(secret) is None
