"""The cross-tenant access matrix: every API operation and every HTML page, tried by every principal.

Principals (see ``matrix_world``): vendor A/B, trainer A/B, kv tenant A/B (API keys), tenant A's console members
(viewer, editor, admin), staff, anonymous. Each row
names one operation (enumerated from the OpenAPI document and the URLconf, so a new endpoint or page without a
row fails ``test_*_covers_every_*``) and what each principal must get:

* ``ok``   the legitimate caller: the expected 2xx.
* ``own``  a 2xx on the caller's *own* data (vendor B listing its products, tenant B writing the same key name
  in its own namespace): nothing of A's may change and no ``ALPHA`` marker may appear in the answer.
* ``deny`` a 4xx with a stable code; not one row anywhere may change, and (unless the app documents otherwise)
  the answer for A's object is the same as for an object that does not exist — a foreign object is
  indistinguishable from a missing one.

Every call runs in a savepoint that is rolled back, so each principal meets the same world and the whole matrix
runs on one world per app (fast on SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.contract.matrix_world import (
    ANON,
    KEYS,
    KV_A,
    KV_ADMIN,
    KV_B,
    KV_EDITOR,
    KV_MEMBERS,
    KV_VIEWER,
    MARKER,
    NOT_DATA,
    PASSWORD,
    PRINCIPALS,
    STAFF,
    TRAINER_A,
    TRAINER_B,
    USERS,
    VENDOR_A,
    VENDOR_B,
    World,
    body_of,
    code_of,
    rolled_back,
    snapshot,
    victim_snapshot,
    world_fixture,  # noqa: F401  (the ``world`` fixture)
)

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Out:
    status: int
    code: str | None = None
    kind: str = "deny"  # ok | own | deny | login (302 to the login page)
    #: A refusal to someone entitled to know the object exists (a tenant's member below the role a page needs):
    #: not compared with the answer for a missing object.
    knows: bool = False


def ok(status: int = 200) -> Out:
    return Out(status, kind="ok")


def own(status: int = 200) -> Out:
    return Out(status, kind="own")


UNAUTHORIZED = Out(401, "unauthorized")
NO_SHOP = Out(404, "no_shop")
LOGIN = Out(302, kind="login")
NO_SHOP_USERS = (TRAINER_A, TRAINER_B, KV_VIEWER, KV_EDITOR, KV_ADMIN, STAFF)


def rule(*parts: dict[str, Out]) -> dict[str, Out]:
    """Later parts override earlier ones; every principal must end up with an outcome."""
    merged = {k: v for part in parts for k, v in part.items()}
    assert set(merged) == set(PRINCIPALS), f"rule without an outcome for {set(PRINCIPALS) - set(merged)}"
    return merged


def public(status: int = 200) -> dict[str, Out]:
    """Anyone, signed in or not (public reads, sign-up, anonymous order placement)."""
    return {p: ok(status) for p in PRINCIPALS}


def signed_in(status: int = 200) -> dict[str, Out]:
    """Any signed-in user; API keys are not user credentials."""
    return {**{p: ok(status) for p in USERS}, **{p: UNAUTHORIZED for p in (*KEYS, ANON)}}


def self_service(status: int = 200) -> dict[str, Out]:
    """Every user acts on their own account; A's is the one watched."""
    return {**signed_in(), VENDOR_A: ok(status), **{p: own(status) for p in USERS if p != VENDOR_A}}


def users_object(status: int, foreign: str) -> dict[str, Out]:
    """An object of vendor A's account: every other user gets the same 404 as for a missing one."""
    return {**signed_in(), VENDOR_A: ok(status), **{p: Out(404, foreign) for p in USERS if p != VENDOR_A}}


def shop_scoped(status: int = 200) -> dict[str, Out]:
    """A vendor's own shop data; users without a shop get 404 no_shop."""
    return {
        **signed_in(),
        VENDOR_A: ok(status),
        VENDOR_B: own(status),
        **{p: NO_SHOP for p in NO_SHOP_USERS},
    }


def shop_object(status: int, foreign: str) -> dict[str, Out]:
    """One of vendor A's products or orders: vendor B gets the 404 of a missing object; a user without a shop a
    404 too (``no_shop`` or the object's code: either way the same as for a missing object)."""
    return {**shop_scoped(status), VENDOR_B: Out(404, foreign), **{p: Out(404) for p in NO_SHOP_USERS}}


#: A valid credential without the right: 403 with a code naming the right (not 401, which says "who are you?").
STAFF_REQUIRED = Out(403, "staff_required")


def staff_only(status: int = 200) -> dict[str, Out]:
    """Back office: staff only. A valid non-staff user token is 403 ``staff_required`` (the same code whether
    ``staff_auth`` or a trading service checks it); no credential, or a tenant key (not a user credential), 401."""
    return {
        **{p: STAFF_REQUIRED for p in USERS},
        STAFF: ok(status),
        **{p: UNAUTHORIZED for p in (*KEYS, ANON)},
    }


def tenant(status: int = 200, foreign: Out | None = None) -> dict[str, Out]:
    """Tenant A's key space: tenant B acts in its own space (``own``) or gets the 404 of a missing key;
    user tokens, even staff ones, are not tenant credentials."""
    return {
        **{p: UNAUTHORIZED for p in (*USERS, ANON)},
        KV_A: ok(status),
        KV_B: foreign or own(status),
    }


OFFER_PARTIES = (TRAINER_A, TRAINER_B)
OFFER_STRANGERS = tuple(p for p in USERS if p not in (*OFFER_PARTIES, STAFF))


def offer_party(*parties: str, status: int = 200) -> dict[str, Out]:
    """Offer actions: the named trainers and staff; the offer's other trainer 403 ``not_your_offer``; any other
    user 404 ``offer_not_found``, as for a missing offer — an offer is private to its two trainers
    (docs/trading.md)."""
    return {
        **signed_in(),
        **{p: Out(404, "offer_not_found") for p in OFFER_STRANGERS},
        **{p: Out(403, "not_your_offer") for p in OFFER_PARTIES if p not in parties},
        **{p: ok(status) for p in (*parties, STAFF)},
    }


Body = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | None


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # the OpenAPI path (or URL pattern with {params} for pages)
    expect: dict[str, Out]
    body: Body = None
    query: str = ""
    form: str = "json"  # json | multipart | ndjson | page (HTML, session)
    params: dict[str, str] = field(default_factory=dict)  # path parameter -> world id name
    headers: dict[str, str] = field(default_factory=dict)
    #: A documented 403 that names an existing object (trading offers: docs/trading.md, "403 not_your_offer").
    leak_ok: bool = False


def of_ids(**fields: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A body made of world ids: ``of_ids(title_id="title_id")`` → ``{"title_id": <A's title id>}``."""
    return lambda ids: {name: ids[source] for name, source in fields.items()}


TRAINERS_CSV = b"id,firstName,lastName,dateOfBirth\ntN,New,Trainer,01-02-1999\n"
POKEMON_CSV = b"id,nickname,species,level,owner,dateOfOwnership\npkN,N,Onix,5,tA,01-02-2020\n"

API: list[Row] = [
    # --- accounts ---------------------------------------------------------------------------------------
    Row("GET", "/api/accounts/me", self_service()),
    Row("GET", "/api/accounts/tokens", self_service()),
    Row("POST", "/api/accounts/tokens", self_service(201), {"name": "new"}),
    Row("POST", "/api/accounts/tokens/login", public(201), {"username": VENDOR_A, "password": PASSWORD}),
    Row("DELETE", "/api/accounts/tokens/{token_id}", users_object(200, "token_not_found")),
    # --- storefront -------------------------------------------------------------------------------------
    Row(
        "POST",
        "/api/storefront/signup",
        public(201),
        {"username": "newbie", "password": PASSWORD, "email": "n@example.com", "shop_name": "Newbie"},
    ),
    Row("GET", "/api/storefront/shop", shop_scoped()),
    Row(
        "POST",
        "/api/storefront/shop",
        rule(
            signed_in(),
            {p: Out(409, "shop_exists") for p in (VENDOR_A, VENDOR_B)},
            {p: own(201) for p in NO_SHOP_USERS},
        ),
        {"name": "Second Shop"},
    ),
    Row("PATCH", "/api/storefront/shop", shop_scoped(), {"contact_phone": "+1 555 0100"}),
    Row("GET", "/api/storefront/products", shop_scoped()),
    Row("POST", "/api/storefront/products", shop_scoped(201), {"name": "New", "mrp": "10", "price": "9"}),
    Row("GET", "/api/storefront/products/{product_id}", shop_object(200, "product_not_found")),
    Row(
        "PATCH",
        "/api/storefront/products/{product_id}",
        shop_object(200, "product_not_found"),
        {"stock": 0},
    ),
    Row("DELETE", "/api/storefront/products/{product_id}", shop_object(200, "product_not_found")),
    Row("POST", "/api/storefront/products/{product_id}/toggle", shop_object(200, "product_not_found")),
    Row("GET", "/api/storefront/orders", shop_scoped()),
    Row("GET", "/api/storefront/orders/export.csv", shop_scoped()),
    Row("GET", "/api/storefront/orders/{order_id}", shop_object(200, "order_not_found")),
    Row(
        "POST",
        "/api/storefront/orders/{order_id}/status",
        shop_object(200, "order_not_found"),
        {"status": "cancelled"},
    ),
    Row(
        "POST",
        "/api/storefront/orders/{order_id}/payment",
        shop_object(200, "order_not_found"),
        {"payment_status": "paid"},
    ),
    Row("GET", "/api/storefront/summary", shop_scoped()),
    Row("GET", "/api/storefront/stores/{slug}", public()),
    Row(
        "POST",
        "/api/storefront/stores/{slug}/orders",
        public(201),
        lambda ids: {
            "items": [{"product_id": ids["product_id"], "quantity": 1}],
            "customer_name": "Zed",
            "phone": "+91 90000 00000",
            "address": "Somewhere 1",
        },
        headers={"HTTP_IDEMPOTENCY_KEY": "matrix-new-order"},
    ),
    Row("GET", "/api/storefront/stores/{slug}/orders/{number}", public()),
    # --- rentals ----------------------------------------------------------------------------------------
    Row("GET", "/api/rentals/titles", public()),
    Row("POST", "/api/rentals/titles", staff_only(201), {"title": "New", "author": "A"}),
    Row("GET", "/api/rentals/titles/{title_id}", public()),
    Row("PATCH", "/api/rentals/titles/{title_id}", staff_only(), {"description": "changed"}),
    Row("GET", "/api/rentals/titles/{title_id}/copies", staff_only()),
    Row("POST", "/api/rentals/titles/{title_id}/copies", staff_only(201), {"count": 1}),
    Row("PATCH", "/api/rentals/copies/{copy_id}", staff_only(), {"state": "withdrawn"}),
    Row("GET", "/api/rentals/price-plans", staff_only()),
    Row("PATCH", "/api/rentals/price-plans/{kind}", staff_only(), {"daily_rate": "2.00"}),
    Row("GET", "/api/rentals/price-plans/{kind}/quote", staff_only(), query="days=3"),
    Row("GET", "/api/rentals/customers", staff_only()),
    Row("POST", "/api/rentals/customers", staff_only(201), {"name": "New Reader"}),
    Row("GET", "/api/rentals/customers/{customer_id}", staff_only()),
    Row("PATCH", "/api/rentals/customers/{customer_id}", staff_only(), {"status": "blocked"}),
    Row("GET", "/api/rentals/customers/{customer_id}/statement", staff_only()),
    Row("POST", "/api/rentals/customers/{customer_id}/payments", staff_only(201), {"amount": "5.00"}),
    Row(
        "POST", "/api/rentals/holds", staff_only(201), of_ids(customer_id="customer_id", title_id="title_id")
    ),
    Row("DELETE", "/api/rentals/holds/{hold_id}", staff_only()),
    Row("GET", "/api/rentals/rentals", staff_only()),
    Row(
        "POST",
        "/api/rentals/rentals",
        staff_only(201),
        of_ids(customer_id="other_customer_id", title_id="title_id"),
    ),
    Row("GET", "/api/rentals/rentals/{rental_id}", staff_only()),
    Row("POST", "/api/rentals/rentals/{rental_id}/return", staff_only()),
    Row("POST", "/api/rentals/returns", staff_only(), of_ids(barcode="barcode")),
    Row("POST", "/api/rentals/rentals/{rental_id}/renew", staff_only()),
    Row("POST", "/api/rentals/exports", staff_only(202)),
    Row("GET", "/api/rentals/exports", staff_only()),
    Row("GET", "/api/rentals/exports/{job_id}", staff_only(), params={"job_id": "export_id"}),
    Row("GET", "/api/rentals/exports/{job_id}/download", staff_only(), params={"job_id": "export_id"}),
    Row("POST", "/api/rentals/reminders/run", staff_only()),
    # --- trading ----------------------------------------------------------------------------------------
    Row("GET", "/api/trading/trainers", public()),
    Row(
        "POST",
        "/api/trading/trainers",
        staff_only(201),
        {"id": "tN", "first_name": "New", "last_name": "T", "date_of_birth": "2000-01-01"},
    ),
    Row("GET", "/api/trading/trainers/{trainer_id}", public()),
    Row("PATCH", "/api/trading/trainers/{trainer_id}", staff_only(200), {"first_name": "Z"}),
    Row("DELETE", "/api/trading/trainers/{trainer_id}", staff_only(204)),
    Row("GET", "/api/trading/pokemon", public()),
    Row(
        "POST",
        "/api/trading/pokemon",
        staff_only(201),
        {"id": "pkN", "nickname": "N", "species": "Onix", "level": 5, "owner": "tA"},
    ),
    Row("GET", "/api/trading/pokemon/{pokemon_id}", public()),
    Row("PATCH", "/api/trading/pokemon/{pokemon_id}", staff_only(200), {"level": 50}),
    Row("DELETE", "/api/trading/pokemon/{pokemon_id}", staff_only(204)),
    Row("GET", "/api/trading/pokemon/{pokemon_id}/history", public()),
    Row(
        "POST",
        "/api/trading/exchange",
        staff_only(200),
        {"trainer_a": "tA", "trainer_b": "tB", "a_gives": ["pkA2"], "b_gives": ["pkB2"]},
    ),
    Row("GET", "/api/trading/offers", rule(signed_in(), {p: own() for p in OFFER_STRANGERS})),
    Row(
        "POST",
        "/api/trading/offers",
        rule(
            offer_party(TRAINER_A, status=201),
            {p: Out(403, "not_your_trainer") for p in (VENDOR_A, VENDOR_B, TRAINER_B, *KV_MEMBERS)},
        ),
        {"proposer": "tA", "receiver": "tB", "give": ["pkA2"], "ask": ["pkB2"]},
    ),
    Row("GET", "/api/trading/offers/{offer_id}", rule(offer_party(*OFFER_PARTIES), {})),
    Row("POST", "/api/trading/offers/{offer_id}/accept", offer_party(TRAINER_B), leak_ok=True),
    Row("POST", "/api/trading/offers/{offer_id}/decline", offer_party(TRAINER_B), leak_ok=True),
    Row("POST", "/api/trading/offers/{offer_id}/cancel", offer_party(TRAINER_A), leak_ok=True),
    Row(
        "POST",
        "/api/trading/offers/{offer_id}/counter",
        offer_party(TRAINER_B, status=201),
        {"give": ["pkB2"], "ask": ["pkA2"]},
        leak_ok=True,
    ),
    Row(
        "POST",
        "/api/trading/import/trainers",
        staff_only(200),
        {"file": TRAINERS_CSV},
        form="multipart",
    ),
    Row(
        "POST",
        "/api/trading/import/pokemon",
        staff_only(200),
        {"file": POKEMON_CSV},
        form="multipart",
    ),
    Row("GET", "/api/trading/import/jobs/{job_id}", staff_only(200)),
    # --- kvstore ----------------------------------------------------------------------------------------
    Row("GET", "/api/kv/keys", tenant()),
    Row("GET", "/api/kv/keys/{key}", tenant(200, Out(404, "key_not_found"))),
    Row("PUT", "/api/kv/keys/{key}", tenant(), {"value": "overwritten"}),
    Row("DELETE", "/api/kv/keys/{key}", tenant(204, Out(404, "key_not_found"))),
    Row("GET", "/api/kv/keys/{key}/history", tenant()),
    # A's shared-key holds text (409 from A's own data); B has no such key and counts from 0 in its own space.
    Row(
        "POST", "/api/kv/keys/{key}/incr", {**tenant(), KV_A: Out(409, "not_a_number", kind="ok")}, {"by": 1}
    ),
    Row("POST", "/api/kv/txn", tenant(), {"success": [{"op": "get", "key": "shared-key"}]}),
    Row("GET", "/api/kv/watch", tenant()),
    Row("POST", "/api/kv/batch", tenant(), {"ops": [{"op": "set", "key": "shared-key", "value": 1}]}),
    Row("POST", "/api/kv/import", tenant(), {"key": "shared-key", "value": 2}, form="ndjson"),
    Row("GET", "/api/kv/tenants", staff_only()),
    Row("POST", "/api/kv/tenants", staff_only(201), {"slug": "charlie"}),
    Row("GET", "/api/kv/tenants/{slug}/keys", staff_only(), params={"slug": "tenant_slug"}),
    Row(
        "POST", "/api/kv/tenants/{slug}/keys", staff_only(201), {"name": "x"}, params={"slug": "tenant_slug"}
    ),
    Row("DELETE", "/api/kv/tenants/{slug}/keys/{key_id}", staff_only(), params={"slug": "tenant_slug"}),
]


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def _path(row: Row, world: World, missing: bool = False) -> str:
    values = {}
    for name in _placeholders(row.path):
        source = row.params.get(name, name)
        values[name] = (world.missing if missing else world.ids)[source]
    path = row.path.format(**values)
    return f"{path}?{row.query}" if row.query else path


#: One client for every call: each ``Client()`` builds its own handler, and WhiteNoise scans the static files
#: whenever a handler loads its middleware.
_client = Client()


def _send(row: Row, world: World, principal: str, missing: bool = False) -> Any:
    client = _client
    client.cookies.clear()
    path = _path(row, world, missing)
    extra: dict[str, Any] = {**row.headers}
    if row.form == "page":  # an HTML page, with a session
        if principal in USERS:
            client.cookies[settings.SESSION_COOKIE_NAME] = _session(world, principal)
        else:
            extra.update(world.headers(principal))  # a bearer key must not open a page
        if row.method == "POST":
            data = row.body(world.ids) if callable(row.body) else row.body
            return client.post(path, data or {}, **extra)
        return client.get(path, **extra)
    extra.update(world.headers(principal))
    data = row.body(world.ids) if callable(row.body) else row.body
    method = getattr(client, row.method.lower())
    if data is None:
        return method(path, **extra)
    if row.form == "multipart":
        files = {k: SimpleUploadedFile(f"{k}.csv", v, "text/csv") for k, v in data.items()}
        return client.post(path, files, **extra)
    if row.form == "ndjson":
        return client.post(path, json.dumps(data), content_type="application/x-ndjson", **extra)
    return method(path, json.dumps(data), content_type="application/json", **extra)


def _session(world: World, principal: str) -> str:
    """A session per user and world, made once (outside the rolled-back savepoints)."""
    if principal not in world.sessions:
        login = Client()
        login.force_login(world.users[principal])
        world.sessions[principal] = login.cookies[settings.SESSION_COOKIE_NAME].value
    return world.sessions[principal]


def _check(row: Row, world: World, principal: str, out: Out) -> list[str]:
    """One principal against one row, in a rolled-back savepoint. Returns the problems found."""
    where = f"{row.method} {row.path} as {principal}"
    problems: list[str] = []
    with rolled_back():
        victim = victim_snapshot(world) if out.kind == "own" else None
        r = _send(row, world, principal)
        body = body_of(r)
        code = code_of(r)
        if r.status_code != out.status or (out.code is not None and code != out.code):
            want = f"{out.status} {out.code or ''}".strip()
            return [f"{where}: got {r.status_code} {code or body[:120]!r}, want {want} ({out.kind})"]
        if r.status_code >= 500:
            problems.append(f"{where}: server error")
        if r.status_code == 401 and not r.get("WWW-Authenticate", "").startswith("Bearer"):
            problems.append(f"{where}: 401 without WWW-Authenticate")
        if out.kind == "login" and not r["Location"].startswith("/accounts/login/"):
            problems.append(f"{where}: redirected to {r['Location']}, not the login page")
        if out.kind in ("deny", "login") and snapshot() != world.baseline:
            problems.append(f"{where}: refused, but the database changed")
        if victim is not None:
            if victim_snapshot(world) != victim:
                problems.append(f"{where}: changed A's data")
            if MARKER in body:
                problems.append(f"{where}: the answer shows A's data")
        if out.kind == "deny" and _placeholders(row.path) and not row.leak_ok and not out.knows:
            m = _send(row, world, principal, missing=True)
            if (m.status_code, code_of(m)) != (r.status_code, code):
                problems.append(
                    f"{where}: {r.status_code} {code} for A's object but {m.status_code} {code_of(m)} for a "
                    "missing one (tells existence apart)"
                )
    return problems


def _run(rows: list[Row], world: World) -> None:
    problems: list[str] = []
    if any(
        r.form == "page" for r in rows
    ):  # sessions first: made inside a savepoint they would be rolled back
        for principal in USERS:
            _session(world, principal)
    for row in rows:
        assert set(row.expect) == set(PRINCIPALS), f"{row.method} {row.path}: incomplete row"
        # The legitimate callers last: their writes are rolled back too, but a failure reads better that way.
        for principal in sorted(PRINCIPALS, key=lambda p: row.expect[p].kind == "ok"):
            problems += _check(row, world, principal, row.expect[principal])
    if problems:
        pytest.fail("access matrix violations:\n" + "\n".join(problems), pytrace=False)


APPS = ["accounts", "storefront", "rentals", "trading", "kv"]


@pytest.mark.parametrize("app", APPS)
def test_api_access_matrix(app: str, world: World) -> None:
    _run([r for r in API if r.path.startswith(f"/api/{app}/")], world)


def test_api_matrix_covers_every_operation(client: Client) -> None:
    """A new endpoint without a row here fails: the matrix is the list of operations in the OpenAPI document."""
    schema = client.get("/api/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    rows = {(r.method, r.path) for r in API}
    assert len(rows) == len(API), "two rows for one operation"
    assert documented - rows == set(), "operations without a row in the access matrix"
    assert rows - documented == set(), "rows for operations that do not exist"
    assert {p.split("/")[2] for _, p in rows} == set(APPS)


# --- HTML pages ---------------------------------------------------------------------------------------------


def page_public(status: int = 200) -> dict[str, Out]:
    return {p: ok(status) for p in PRINCIPALS}


def page_login(status: int = 200, foreign: Out | None = None, no_shop: Out | None = None) -> dict[str, Out]:
    """A signed-in page: anonymous (and a bearer key, which pages ignore) is sent to the login page."""
    return {
        **{p: LOGIN for p in (*KEYS, ANON)},
        VENDOR_A: ok(status),
        VENDOR_B: foreign or own(status),
        **{p: no_shop or own(status) for p in NO_SHOP_USERS},
    }


def vendor_page(status: int = 200, foreign: Out | None = None) -> dict[str, Out]:
    return page_login(status, foreign, Out(404))


NOT_FOUND = Out(404)


def staff_page(status: int = 200) -> dict[str, Out]:
    """A staff page (the rentals desk): anonymous to the login page, a signed-in non-staff user 403."""
    return {
        **{p: LOGIN for p in (*KEYS, ANON)},
        **{p: Out(403) for p in USERS if p != STAFF},
        STAFF: ok(status),
    }


#: Users whose library card is linked (matrix_world): their own account pages.
PATRONS = (TRAINER_A, TRAINER_B)


def patron_page(owner: str, status: int = 200) -> dict[str, Out]:
    """A patron's own account page or action: anonymous to the login page; ``owner`` acts on their own card;
    every other user gets the 404 of a missing object (no card, or not their loan or hold)."""
    return {
        **{p: LOGIN for p in (*KEYS, ANON)},
        **{p: NOT_FOUND for p in USERS if p != owner},
        owner: ok(status),
    }


RANK = {"viewer": 1, "editor": 2, "admin": 3}


def kv_page_login() -> dict[str, Out]:
    return {p: LOGIN for p in (*KEYS, ANON)}


def kv_page(need: str, status: int = 200) -> dict[str, Out]:
    """A page of tenant A in the KV console needing role ``need``: staff and the members whose role includes it get
    ``status``; a member below it 403 (a member may know the tenant exists); every other user the 404 of a missing
    tenant; anonymous (and a bearer key, which pages ignore) the login page."""
    return {
        **kv_page_login(),
        **{p: NOT_FOUND for p in USERS},
        **{p: ok(status) if RANK[r] >= RANK[need] else Out(403, knows=True) for p, r in KV_MEMBERS.items()},
        STAFF: ok(status),
    }


def staff_page_refused(status: int) -> dict[str, Out]:
    """A staff action the service refuses for the world's object (staff still get past the page's checks)."""
    return {**staff_page(), STAFF: Out(status, kind="own")}


def trainer_page(status: int = 200, no_trainer: int | None = None) -> dict[str, Out]:
    """A signed-in trading page: trainer A's own; every other user sees their own (or a page saying their
    account has no trainer, ``no_trainer``); anonymous to the login page."""
    other = no_trainer if no_trainer is not None else status
    return {
        **{p: LOGIN for p in (*KEYS, ANON)},
        **{p: own(other) for p in USERS},
        TRAINER_B: own(status),
        TRAINER_A: ok(status),
    }


def offer_page(*parties: str, status: int = 200) -> dict[str, Out]:
    """An offer's page or action: its named trainers and staff; the offer's other trainer 403; any other user the
    404 of a missing offer (an offer is private to its two trainers)."""
    return {
        **{p: LOGIN for p in (*KEYS, ANON)},
        **{p: NOT_FOUND for p in OFFER_STRANGERS},
        **{p: Out(403) for p in OFFER_PARTIES if p not in parties},
        **{p: ok(status) for p in (*parties, STAFF)},
    }


PAGES: list[Row] = [
    Row("GET", "/", page_public(), form="page"),
    Row("GET", "/accounts/signup/", page_public(), form="page"),
    Row("GET", "/accounts/login/", page_public(), form="page"),
    Row("GET", "/accounts/password-reset/", page_public(), form="page"),
    Row("POST", "/accounts/password-reset/", page_public(), form="page"),  # no address posted: the form again
    Row("GET", "/accounts/password-reset/sent/", page_public(), form="page"),
    Row("GET", "/accounts/reset/done/", page_public(), form="page"),
    Row("POST", "/accounts/logout/", page_public(302), form="page"),
    Row("GET", "/accounts/tokens/", page_login(), form="page"),
    # A foreign token is refused with a message on the tokens page (a redirect), and nothing is revoked.
    Row("POST", "/accounts/tokens/{token_id}/revoke/", page_login(302), form="page"),
    Row(  # the landing page when anonymous; no shop yet: off to open one
        "GET",
        "/storefront/",
        rule(page_login(no_shop=Out(302, kind="own")), {p: ok() for p in (*KEYS, ANON)}),
        form="page",
    ),
    Row(  # signed in already: off to the shop settings
        "GET",
        "/storefront/signup/",
        rule(page_public(), {p: own(302) for p in USERS}),
        form="page",
    ),
    Row("GET", "/storefront/shop/", page_login(), form="page"),
    Row("GET", "/storefront/chart.svg", vendor_page(), form="page"),
    Row("GET", "/storefront/products/", vendor_page(), form="page"),
    Row("GET", "/storefront/products/new/", vendor_page(), form="page"),
    Row("GET", "/storefront/products/{product_id}/edit/", vendor_page(200, NOT_FOUND), form="page"),
    Row("POST", "/storefront/products/{product_id}/toggle/", vendor_page(302, NOT_FOUND), form="page"),
    Row(
        "GET", "/storefront/products/{product_id}/delete/", vendor_page(200, NOT_FOUND), form="page"
    ),  # confirm
    Row("POST", "/storefront/products/{product_id}/delete/", vendor_page(302, NOT_FOUND), form="page"),
    Row("GET", "/storefront/orders/", vendor_page(), form="page"),
    Row("GET", "/storefront/orders.csv", vendor_page(), form="page"),
    Row("GET", "/storefront/orders/{order_id}/", vendor_page(200, NOT_FOUND), form="page"),
    # GET of a change is its confirmation page (cancel, refund); without a known change it goes back to the order.
    Row("GET", "/storefront/orders/{order_id}/status/", vendor_page(302, NOT_FOUND), form="page"),
    Row("GET", "/storefront/orders/{order_id}/payment/", vendor_page(302, NOT_FOUND), form="page"),
    Row(
        "POST",
        "/storefront/orders/{order_id}/status/",
        vendor_page(302, NOT_FOUND),
        {"status": "cancelled"},
        form="page",
    ),
    Row(
        "POST",
        "/storefront/orders/{order_id}/payment/",
        vendor_page(302, NOT_FOUND),
        {"payment_status": "paid"},
        form="page",
    ),
    Row("GET", "/s/{slug}/", page_public(), form="page"),
    Row("POST", "/s/{slug}/order/", page_public(422), form="page"),  # public form; no items posted
    Row("GET", "/s/{slug}/cart/", page_public(), form="page"),
    Row("POST", "/s/{slug}/cart/", page_public(422), form="page"),  # no product posted: the cart page's 422
    Row("GET", "/s/{slug}/orders/{number}/", page_public(), form="page"),
    Row("GET", "/rentals/", page_public(), form="page"),
    Row("GET", "/rentals/titles/{title_id}/", page_public(), form="page"),
    Row("GET", "/rentals/desk/", staff_page(), form="page"),
    Row("POST", "/rentals/desk/rent/", staff_page(422), form="page"),  # no body posted: the form's 422
    Row("POST", "/rentals/desk/return/", staff_page(422), form="page"),
    Row("GET", "/rentals/desk/returns/{rental_id}/", staff_page(), form="page"),
    Row("GET", "/rentals/desk/payments/{payment_id}/", staff_page(), form="page"),
    Row("GET", "/rentals/desk/patrons/", staff_page(), form="page"),
    Row("GET", "/rentals/desk/patrons/suggest/", staff_page(), form="page"),
    Row("GET", "/rentals/desk/patrons/new/", staff_page(), form="page"),
    Row("GET", "/rentals/desk/patrons/{customer_id}/", staff_page(), form="page"),
    Row("GET", "/rentals/desk/patrons/{customer_id}/edit/", staff_page(), form="page"),
    Row("GET", "/rentals/desk/patrons/{customer_id}/statement/", staff_page(), form="page"),
    # POSTs without a body: the form's 422 (nothing written); "done" ends the clerk's checkout session.
    Row("POST", "/rentals/desk/patrons/{customer_id}/checkout/", staff_page(422), form="page"),
    Row("POST", "/rentals/desk/patrons/{customer_id}/done/", staff_page(302), form="page"),
    Row("POST", "/rentals/desk/patrons/{customer_id}/renew/", staff_page(422), form="page"),
    Row("POST", "/rentals/desk/patrons/{customer_id}/status/", staff_page(422), form="page"),
    Row("POST", "/rentals/desk/patrons/{customer_id}/holds/", staff_page(422), form="page"),
    Row("POST", "/rentals/desk/patrons/{customer_id}/payments/", staff_page(422), form="page"),
    Row(
        "POST",
        "/rentals/desk/patrons/{customer_id}/holds/{hold_id}/cancel/",
        staff_page(302),
        form="page",
        params={"customer_id": "other_customer_id"},  # the world's hold is the other customer's
    ),
    # The patron's own account: trainer A's card has the world's rental, trainer B's the hold.
    Row(
        "POST",
        "/rentals/titles/{title_id}/hold/",
        # a user without a card is sent back to the title page, nothing written; B waits for it already (409)
        rule(
            patron_page(TRAINER_A, 302),
            {p: Out(302) for p in USERS if p not in PATRONS},
            {TRAINER_B: Out(409)},
        ),
        form="page",
        leak_ok=True,  # titles are public: telling a missing one apart leaks nothing
    ),
    Row(
        "GET",
        "/rentals/account/",
        rule(patron_page(TRAINER_A), {p: own() for p in USERS if p != TRAINER_A}),
        form="page",
    ),
    Row("POST", "/rentals/account/loans/{rental_id}/renew/", patron_page(TRAINER_A, 302), form="page"),
    Row("POST", "/rentals/account/holds/{hold_id}/cancel/", patron_page(TRAINER_B, 302), form="page"),
    Row(
        "POST",
        "/rentals/account/history/",
        rule(patron_page(TRAINER_A, 302), {TRAINER_B: own(302)}),
        form="page",
    ),
    Row("GET", "/trading/", page_public(), form="page"),
    # trading: a trainer's pages (an account without a trainer is told so: 200), offers (private to their two
    # trainers and staff; the other side 403, anyone else the 404 of a missing offer), the staff pages.
    Row("GET", "/trading/me/", trainer_page(), form="page"),
    Row("GET", "/trading/trainers/{trainer_id}/", page_public(), form="page"),
    Row("GET", "/trading/trainers/{trainer_id}/offer/", trainer_page(), form="page"),
    Row("POST", "/trading/trainers/{trainer_id}/offer/", trainer_page(422, no_trainer=200), form="page"),
    Row("GET", "/trading/pokemon/{pokemon_id}/", page_public(), form="page"),
    Row("GET", "/trading/offers/", trainer_page(), form="page"),
    Row("GET", "/trading/offers/{offer_id}/", offer_page(*OFFER_PARTIES), form="page"),
    Row(
        "POST",
        "/trading/offers/{offer_id}/accept/",
        offer_page(TRAINER_B, status=302),
        form="page",
        leak_ok=True,
    ),
    Row(
        "POST",
        "/trading/offers/{offer_id}/decline/",
        offer_page(TRAINER_B, status=302),
        form="page",
        leak_ok=True,
    ),
    Row(
        "POST",
        "/trading/offers/{offer_id}/cancel/",
        offer_page(TRAINER_A, status=302),
        form="page",
        leak_ok=True,
    ),
    Row("GET", "/trading/offers/{offer_id}/counter/", offer_page(TRAINER_B), form="page", leak_ok=True),
    Row(
        "POST",
        "/trading/offers/{offer_id}/counter/",
        offer_page(TRAINER_B, status=422),
        form="page",
        leak_ok=True,
    ),
    Row("GET", "/trading/exchange/", staff_page(), form="page"),
    Row("POST", "/trading/exchange/", staff_page(422), form="page"),  # no body posted: the form's 422
    Row("GET", "/trading/import/", staff_page(), form="page"),
    Row("POST", "/trading/import/", staff_page(422), form="page"),
    Row("GET", "/trading/import/previews/{preview_id}/", staff_page(), form="page"),
    # The world's preview names no stored file: staff are refused 409 preview_not_ready, nothing written.
    Row("POST", "/trading/import/previews/{preview_id}/confirm/", staff_page_refused(409), form="page"),
    Row("POST", "/trading/import/previews/{preview_id}/again/", staff_page_refused(409), form="page"),
    Row("GET", "/trading/import/jobs/{job_id}/", staff_page(), form="page"),
    Row("GET", "/trading/import/jobs/{job_id}/progress.json", staff_page(), form="page"),
    # The KV console: staff and tenant A's members by role; anyone else the 404 of a missing tenant. POSTs without
    # a body are the form's 422 for those allowed.
    Row(  # members see their tenants (A listed), other users a page saying they have none, staff every tenant
        "GET",
        "/kv/",
        rule(kv_page("viewer"), {p: own() for p in USERS if p not in (*KV_MEMBERS, STAFF)}),
        form="page",
    ),
    Row("POST", "/kv/", rule({p: Out(403) for p in USERS}, {STAFF: ok(422)}, kv_page_login()), form="page"),
    Row("GET", "/kv/t/{tenant_slug}/", kv_page("viewer"), form="page"),
    Row("GET", "/kv/t/{tenant_slug}/entry/", kv_page("viewer"), form="page", query="key=shared-key"),
    Row("GET", "/kv/t/{tenant_slug}/edit/", kv_page("editor"), form="page", query="key=shared-key"),
    Row("POST", "/kv/t/{tenant_slug}/edit/", kv_page("editor", 422), form="page"),
    Row("GET", "/kv/t/{tenant_slug}/delete/", kv_page("editor"), form="page", query="key=shared-key"),
    Row("POST", "/kv/t/{tenant_slug}/delete/", kv_page("editor", 422), form="page"),
    Row("GET", "/kv/t/{tenant_slug}/history/", kv_page("viewer"), form="page", query="key=shared-key"),
    Row("GET", "/kv/t/{tenant_slug}/watch/", kv_page("viewer"), form="page"),
    Row("GET", "/kv/t/{tenant_slug}/watch.json", kv_page("viewer"), form="page", query="since=0"),
    Row("GET", "/kv/t/{tenant_slug}/apikeys/", kv_page("admin"), form="page"),
    Row("POST", "/kv/t/{tenant_slug}/apikeys/", kv_page("admin", 422), form="page"),
    Row("POST", "/kv/t/{tenant_slug}/apikeys/{key_id}/revoke/", kv_page("admin", 302), form="page"),
    Row("GET", "/kv/t/{tenant_slug}/members/", kv_page("admin"), form="page"),
    Row("POST", "/kv/t/{tenant_slug}/members/", kv_page("admin", 422), form="page"),  # no role: invalid_role
    Row("POST", "/kv/t/{tenant_slug}/members/{member_id}/role/", kv_page("admin", 422), form="page"),
    Row("POST", "/kv/t/{tenant_slug}/members/{member_id}/remove/", kv_page("admin", 302), form="page"),
]

#: Routes that hold no one's data (operations, documents) or are not Bazaar's own pages.
NOT_TENANT_DATA = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/openapi.json",
    # The password-reset link: its token is the credential (tested in accounts/tests/test_password_reset.py).
    "/accounts/reset/{uidb64}/{token}/",
}


def _routes(resolver: URLResolver, prefix: str = "") -> list[str]:
    out: list[str] = []
    for p in resolver.url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            out += _routes(p, route)
        elif isinstance(p, URLPattern):
            out.append("/" + route)
    return out


def _as_template(route: str) -> str:
    """``storefront/products/<int:pk>/edit/`` → ``/storefront/products/{product_id}/edit/`` (param names as rows)."""
    import re

    names = {
        "storefront/products/": "product_id",
        "storefront/orders/": "order_id",
        "tokens/": "token_id",
        "titles/": "title_id",
    }
    for stem, name in names.items():
        if stem in route:
            route = re.sub(r"<int:pk>|<int:token_id>|<int:title_id>", "{" + name + "}", route)
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def test_page_matrix_covers_every_page() -> None:
    """A new page without a row fails (the Django admin and the API are covered elsewhere)."""
    routes = {
        _as_template(r)
        for r in _routes(get_resolver())
        # (a regex route prints as "/^media/…": the media files served when DEBUG is on at URLconf import)
        if not r.replace("/^", "/", 1).startswith(("/api/", "/admin/", "/static/", "/media/"))
    }
    rows = {r.path for r in PAGES}
    assert routes - rows - NOT_TENANT_DATA == set(), "pages without a row in the access matrix"
    assert rows - routes == set(), "rows for pages that do not exist"


def test_page_access_matrix(world: World) -> None:
    _run(PAGES, world)


def test_admin_is_staff_only(world: World) -> None:
    """Only staff reach the back office; everybody else is sent to the admin login, with nothing shown."""
    for principal in PRINCIPALS:
        client = _client
        client.cookies.clear()
        if principal in USERS:
            client.force_login(world.users[principal])
        extra: dict[str, Any] = world.headers(principal) if principal in KEYS else {}
        r = client.get("/admin/", **extra)
        if principal == STAFF:
            assert r.status_code == 200, principal
        else:
            assert (r.status_code, r["Location"]) == (302, "/admin/login/?next=/admin/"), principal


def test_the_checks_see_a_change_anywhere(world: World) -> None:
    """The "nothing changed" snapshot reads every Bazaar table, and the victim snapshot sees A's rows."""
    from django.apps import apps
    from django.db.models import F

    from bazaar.kvstore.models import Entry

    populated = {
        m._meta.label
        for m in apps.get_models()
        if m.__module__.startswith("bazaar.") and m._default_manager.exists()
    }
    # The cache's bookkeeping is not data: whether it has a row depends on which test opened a Redis connection.
    assert {label for label, _ in world.baseline} == populated - NOT_DATA
    victim = victim_snapshot(world)
    with rolled_back():
        Entry.objects.filter(tenant__slug="alpha").update(version=F("version") + 1)
        assert snapshot() != world.baseline
        assert victim_snapshot(world) != victim
    with rolled_back():
        Entry.objects.filter(tenant__slug="bravo").update(version=F("version") + 1)
        assert snapshot() != world.baseline
        assert victim_snapshot(world) == victim
