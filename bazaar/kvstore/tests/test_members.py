"""Tenant membership: the services (who may add, re-role and remove members; a tenant keeps its last admin) and
what each role may do in the console (viewer: read and watch; editor: also write and delete; admin: also API keys
and members; a non-member: the 404 of a missing tenant). Every refusal asserts its status, its message or code,
and that nothing was written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from bazaar.accounts.models import User
from bazaar.core.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from bazaar.core.testing import assert_page_refused
from bazaar.kvstore import access, services
from bazaar.kvstore.models import Change, Entry, Tenant, TenantApiKey, TenantMember

pytestmark = pytest.mark.django_db


def state() -> list[tuple[Any, ...]]:
    """Everything the console or the member services could write, to assert that a refusal changed nothing."""
    return [
        *TenantMember.objects.order_by("pk").values_list("tenant_id", "user_id", "role"),
        *Entry.objects.order_by("pk").values_list("tenant_id", "key", "value", "version", "expires_at"),
        *Change.objects.order_by("pk").values_list("revision", "key", "op"),
        *Tenant.objects.order_by("pk").values_list("slug", "revision"),
        *TenantApiKey.objects.order_by("pk").values_list("name", "revoked_at"),
    ]


@pytest.fixture
def people(make_user: Any) -> dict[str, User]:
    """Tenant acme with an admin, an editor and a viewer; an outsider; staff; and tenant globex (admin: ada)."""
    acme = services.tenant_create(slug="acme")
    globex = services.tenant_create(slug="globex")
    users = {name: make_user(name) for name in ("ada", "ed", "vic", "out")}
    users["root"] = make_user("root", is_staff=True)
    for name, role in (("ada", "admin"), ("ed", "editor"), ("vic", "viewer")):
        services.member_add(tenant_id=acme.pk, who=name, role=role, actor=users["root"])
    services.member_add(tenant_id=globex.pk, who="ada", role="admin", actor=users["root"])
    services.entry_set(tenant_id=acme.pk, key="cfg/a", value={"n": 1})
    return users


#: The site's 404 page (templates/404.html), the answer to a tenant one is not a member of.
NOT_FOUND_PAGE = "We could not find that page"


def acme() -> Tenant:
    return Tenant.objects.get(slug="acme")


def member(name: str, slug: str = "acme") -> TenantMember:
    return TenantMember.objects.get(user__username=name, tenant__slug=slug)


def client_of(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


# --- services -----------------------------------------------------------------------------------------------


def test_staff_and_tenant_admins_add_members_by_username_or_email(people: dict[str, User]) -> None:
    added = services.member_add(
        tenant_id=acme().pk, who="OUT@example.com", role="editor", actor=people["ada"]
    )
    assert (added.user.username, added.role) == ("out", "editor")
    assert access.role_of(user=people["out"], tenant_id=acme().pk) == "editor"
    assert access.role_of(user=people["root"], tenant_id=acme().pk) == "staff"
    glob = Tenant.objects.get(slug="globex")
    assert (
        services.member_add(tenant_id=glob.pk, who="vic", role="viewer", actor=people["root"]).role
        == "viewer"
    )


@pytest.mark.parametrize(
    ("actor", "who", "role", "error", "code"),
    [
        ("ed", "out", "viewer", PermissionDenied, "role_required"),  # an editor does not manage members
        ("vic", "out", "viewer", PermissionDenied, "role_required"),
        ("out", "out", "admin", NotFound, "tenant_not_found"),  # a non-member cannot even tell acme exists
        ("ada", "nobody", "viewer", NotFound, "user_not_found"),
        ("ada", "", "viewer", ValidationFailed, "user_not_found"),
        ("ada", "out", "owner", ValidationFailed, "invalid_role"),
        ("ada", "ed", "viewer", Conflict, "member_exists"),
    ],
)
def test_member_add_refusals_write_nothing(
    people: dict[str, User], actor: str, who: str, role: str, error: type[DomainError], code: str
) -> None:
    before = state()
    with pytest.raises(error) as exc:
        services.member_add(tenant_id=acme().pk, who=who, role=role, actor=people[actor])
    assert exc.value.code == code
    assert state() == before


def test_an_email_two_accounts_share_is_refused(people: dict[str, User], make_user: Any) -> None:
    twin = make_user("twin")
    twin.email = "out@example.com"
    twin.save()
    before = state()
    with pytest.raises(Conflict) as exc:
        services.member_add(tenant_id=acme().pk, who="out@example.com", role="viewer", actor=people["ada"])
    assert exc.value.code == "user_ambiguous"
    assert state() == before


def test_the_last_admin_can_be_neither_demoted_nor_removed(people: dict[str, User]) -> None:
    before = state()
    calls: tuple[Callable[[], object], ...] = (
        lambda: services.member_set_role(
            tenant_id=acme().pk, member_id=member("ada").pk, role="editor", actor=people["ada"]
        ),
        lambda: services.member_remove(tenant_id=acme().pk, member_id=member("ada").pk, actor=people["root"]),
    )
    for call in calls:
        with pytest.raises(Conflict) as exc:
            call()
        assert exc.value.code == "last_admin"
        assert "last admin" in exc.value.message
        assert state() == before
    # With a second admin, the first may step down, and then the second is the last one.
    services.member_set_role(
        tenant_id=acme().pk, member_id=member("ed").pk, role="admin", actor=people["ada"]
    )
    services.member_remove(tenant_id=acme().pk, member_id=member("ada").pk, actor=people["ada"])
    assert access.role_of(user=people["ada"], tenant_id=acme().pk) is None
    before = state()
    with pytest.raises(Conflict):
        services.member_set_role(
            tenant_id=acme().pk, member_id=member("ed").pk, role="viewer", actor=people["ed"]
        )
    assert state() == before


def test_role_changes_and_removals_need_an_admin_of_that_tenant(people: dict[str, User]) -> None:
    before = state()
    with pytest.raises(PermissionDenied):
        services.member_set_role(
            tenant_id=acme().pk, member_id=member("vic").pk, role="admin", actor=people["ed"]
        )
    with pytest.raises(PermissionDenied):
        services.member_remove(tenant_id=acme().pk, member_id=member("ed").pk, actor=people["vic"])
    with pytest.raises(NotFound) as exc:  # a membership of another tenant is the 404 of a missing one
        services.member_remove(tenant_id=acme().pk, member_id=member("ada", "globex").pk, actor=people["ada"])
    assert exc.value.code == "member_not_found"
    assert state() == before
    services.member_set_role(
        tenant_id=acme().pk, member_id=member("vic").pk, role="editor", actor=people["ada"]
    )
    services.member_remove(tenant_id=acme().pk, member_id=member("ed").pk, actor=people["ada"])
    assert sorted(TenantMember.objects.filter(tenant=acme()).values_list("user__username", "role")) == [
        ("ada", "admin"),
        ("vic", "editor"),
    ]


# --- what each role may do in the console ------------------------------------------------------------------

V, E, A, S, OUT = "vic", "ed", "ada", "root", "out"
EVERYONE = (V, E, A, S)


@pytest.mark.parametrize(
    ("method", "path", "data", "allowed", "ok_status"),
    [
        ("GET", "/kv/t/acme/", None, EVERYONE, 200),
        ("GET", "/kv/t/acme/entry/?key=cfg/a", None, EVERYONE, 200),
        ("GET", "/kv/t/acme/history/?key=cfg/a", None, EVERYONE, 200),
        ("GET", "/kv/t/acme/watch/", None, EVERYONE, 200),
        ("GET", "/kv/t/acme/watch.json?since=0", None, EVERYONE, 200),
        ("GET", "/kv/t/acme/edit/?key=cfg/a", None, (E, A, S), 200),
        ("POST", "/kv/t/acme/edit/", {"key": "cfg/b", "value": "2", "version": "0"}, (E, A, S), 302),
        ("GET", "/kv/t/acme/delete/?key=cfg/a", None, (E, A, S), 200),
        ("POST", "/kv/t/acme/delete/", {"key": "cfg/a", "version": "1"}, (E, A, S), 302),
        ("GET", "/kv/t/acme/apikeys/", None, (A, S), 200),
        ("POST", "/kv/t/acme/apikeys/", {"name": "ci"}, (A, S), 201),
        ("GET", "/kv/t/acme/members/", None, (A, S), 200),
        ("POST", "/kv/t/acme/members/", {"who": "out", "role": "viewer"}, (A, S), 302),
    ],
)
def test_each_role_does_exactly_what_it_allows(
    people: dict[str, User], method: str, path: str, data: Any, allowed: tuple[str, ...], ok_status: int
) -> None:
    for name in (V, E, A, S, OUT):
        c = client_of(people[name])
        with transaction.atomic():  # rolled back: every person meets the same state
            check(name, c, method, path, data, allowed, ok_status)
            transaction.set_rollback(True)


def check(name: str, c: Client, method: str, path: str, data: Any, allowed: tuple[str, ...], ok: int) -> None:
    """One person, one request: the allowed get ``ok`` (a POST writes), a non-member the 404 of a missing tenant,
    a member below the role a 403 naming their role; a refusal writes nothing."""
    before = state()
    r = c.get(path) if method == "GET" else c.post(path, data)
    if name in allowed:
        assert r.status_code == ok, (name, r.status_code)
        assert r["Cache-Control"] == "private, no-store"
        assert (state() != before) == (method == "POST")
        return
    assert state() == before
    if name == OUT:
        assert r.status_code == 404, (name, r.status_code)
        assert "acme" not in r.content.decode()
        assert NOT_FOUND_PAGE in r.content.decode()
        return
    assert r.status_code == 403, (name, r.status_code)
    html = r.content.decode()
    assert f"Your role in this tenant is {'viewer' if name == V else 'editor'}" in html
    assert "Nothing was changed." in html


def test_writes_by_an_editor_go_through_the_services(people: dict[str, User]) -> None:
    c = client_of(people[E])
    assert (
        c.post("/kv/t/acme/edit/", {"key": "cfg/a", "value": '{"n": 2}', "version": "1"}).status_code == 302
    )
    row = Entry.objects.get(key="cfg/a")
    assert (row.value, row.version, row.mod_revision) == ('{"n":2}', 2, 2)
    assert list(Change.objects.filter(key="cfg/a").values_list("revision", "op")) == [(1, "set"), (2, "set")]
    # A stale edit is the conflict with both values, and nothing is written.
    before = state()
    r = c.post("/kv/t/acme/edit/", {"key": "cfg/a", "value": '"mine"', "version": "1"})
    assert r.status_code == 409
    assert "&quot;mine&quot;" in r.content.decode()
    assert "&quot;n&quot;: 2" in r.content.decode()
    assert state() == before


def test_the_nav_offers_what_the_role_allows(people: dict[str, User]) -> None:
    viewer = client_of(people[V]).get("/kv/t/acme/entry/", {"key": "cfg/a"}).content.decode()
    assert "you: viewer" in viewer
    assert "New key" not in viewer
    assert "Delete…" not in viewer
    assert "API keys" not in viewer
    editor = client_of(people[E]).get("/kv/t/acme/entry/", {"key": "cfg/a"}).content.decode()
    assert "New key" in editor
    assert "Delete…" in editor
    assert "Members" not in editor
    admin = client_of(people[A]).get("/kv/t/acme/").content.decode()
    assert "API keys" in admin
    assert "Members" in admin


def test_a_member_of_several_tenants_sees_them_and_a_switcher(people: dict[str, User]) -> None:
    ada = client_of(people[A])
    listing = ada.get("/kv/").content.decode()
    assert "acme" in listing
    assert "globex" in listing
    assert "New tenant" not in listing
    assert "Switch tenant" in ada.get("/kv/t/globex/").content.decode()
    vic = client_of(people[V])
    page = vic.get("/kv/").content.decode()
    assert "acme" in page
    assert "globex" not in page
    assert "Switch tenant" not in vic.get("/kv/t/acme/").content.decode()
    assert_page_refused(vic.get("/kv/t/globex/"), 404, NOT_FOUND_PAGE)


def test_admin_manages_members_in_the_console(people: dict[str, User]) -> None:
    ada = client_of(people[A])
    r = ada.post("/kv/t/acme/members/", {"who": "out@example.com", "role": "editor"})
    assert r.status_code == 302
    assert access.role_of(user=people[OUT], tenant_id=acme().pk) == "editor"
    before = state()
    for data, status, text in (
        ({"who": "nobody", "role": "viewer"}, 404, "No user"),
        ({"who": "out", "role": "viewer"}, 409, "member already"),
        ({"who": "vic", "role": "root"}, 422, "A role is viewer, editor or admin."),
    ):
        r = ada.post("/kv/t/acme/members/", data)
        assert r.status_code == status
        assert text in r.content.decode()
        assert state() == before
    r = ada.post(f"/kv/t/acme/members/{member(A).pk}/role/", {"role": "viewer"})
    assert r.status_code == 409
    assert "last admin" in r.content.decode()
    assert state() == before
    r = ada.post(f"/kv/t/acme/members/{member(A).pk}/remove/")
    assert_page_refused(r, 409, "last admin")
    assert state() == before
    r = ada.post(f"/kv/t/acme/members/{member('ada', 'globex').pk}/remove/")  # another tenant's membership
    assert_page_refused(r, 404, "No such member.")
    assert "(member_not_found)" in r.content.decode()
    assert state() == before
    assert ada.post(f"/kv/t/acme/members/{member(V).pk}/role/", {"role": "admin"}).status_code == 302
    # Stepping down leads to the keys; leaving leads to the tenant list, where acme is no longer listed.
    r = ada.post(f"/kv/t/acme/members/{member(A).pk}/role/", {"role": "editor"})
    assert r["Location"] == "/kv/t/acme/"
    vic = client_of(people[V])
    assert vic.post(f"/kv/t/acme/members/{member(A).pk}/remove/").status_code == 302
    assert_page_refused(ada.get("/kv/t/acme/"), 404, NOT_FOUND_PAGE)
    before = state()
    r = vic.post(f"/kv/t/acme/members/{member(V).pk}/remove/")
    assert_page_refused(r, 409, "last admin")  # vic is the last admin now
    assert state() == before


def test_an_api_key_made_by_a_tenant_admin_is_shown_once(people: dict[str, User]) -> None:
    ada = client_of(people[A])
    r = ada.post("/kv/t/acme/apikeys/", {"name": "deploy"})
    assert r.status_code == 201
    secret = r.context["issued"].secret
    assert secret in r.content.decode()
    principal = services.apikey_authenticate(secret)
    assert principal is not None
    assert principal.tenant_id == acme().pk
    assert secret not in ada.get("/kv/t/acme/apikeys/").content.decode()


def test_the_django_admin_goes_through_the_services(people: dict[str, User], make_user: Any) -> None:
    root = client_of(make_user("boss", is_staff=True, is_superuser=True))
    r = root.post(
        "/admin/kvstore/tenantmember/add/", {"tenant": acme().pk, "user": people[OUT].pk, "role": "viewer"}
    )
    assert r.status_code == 302
    assert member(OUT).role == "viewer"
    before = state()
    r = root.post(f"/admin/kvstore/tenantmember/{member(A).pk}/change/", {"role": "editor"})
    assert r.status_code == 200  # the form again, with the service's message
    assert "last admin" in r.content.decode()
    r = root.post(
        "/admin/kvstore/tenantmember/",
        {"action": "remove_members", "_selected_action": [member(A).pk, member(V).pk]},
        follow=True,
    )
    assert "last admin" in r.content.decode()
    assert "Removed 1 member(s)." in r.content.decode()
    assert not TenantMember.objects.filter(user__username=V, tenant=acme()).exists()
    assert member(A).role == "admin"
    assert len(state()) == len(before) - 1
