"""The fast path is checked, not copied: for every WSGI fast write route, the same request answered by the fast path
and by Django (the API view) from the same database state gives the same status, body and headers — for the
success and for every error the service can answer. Each pair runs in a transaction that is rolled back, with the
clock frozen, so both see exactly the same world.

The accepted fields and text limits of the fast paths come from the API's schemas; the cases below check that the
schema's own bounds send the request to Django (which answers 422) rather than being restated.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.utils import timezone

from bazaar.core.fastpath import FastPath
from bazaar.core.middleware import with_csp
from bazaar.core.testing import wsgi_call

pytestmark = pytest.mark.django_db(transaction=True)

FROZEN = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
#: Headers that carry no meaning a client could act on differently between the two answers. None so far: every
#: header of the fast answer must equal Django's.
VOLATILE: frozenset[str] = frozenset()


@contextlib.contextmanager
def _rolled_back() -> Iterator[None]:
    # Like Django's test client: requests must not close the connection in the middle of the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        with transaction.atomic():
            yield
            transaction.set_rollback(True)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _rewind(models: tuple[Any, ...]) -> None:
    """PostgreSQL sequences do not roll back: put them where the other side found them, so both get one id."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return  # SQLite's AUTOINCREMENT counter rolls back with the transaction
    with connection.cursor() as cur:
        for model in models:
            table = model._meta.db_table
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)",
                [table],
            )


def _answers(
    method: str, path: str, body: Any, headers: dict[str, str], rewind: tuple[Any, ...] = ()
) -> tuple[Any, Any]:
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    django_app = get_wsgi_application()
    passed: list[bool] = []

    def behind(environ: dict[str, Any], start_response: Any) -> Any:
        passed.append(True)
        return django_app(environ, start_response)

    _rewind(rewind)
    with _rolled_back():
        # As served (config/wsgi.py): the fast path, with the policy header the WSGI entry point adds to its answers.
        fast = wsgi_call(with_csp(FastPath(behind)), path, method=method, body=raw, **extra)
    assert passed == [], f"{method} {path}: the fast path handed this case to Django"
    _rewind(rewind)
    with _rolled_back():
        slow = wsgi_call(django_app, path, method=method, body=raw, **extra)
    return fast, slow


def _same(fast: Any, slow: Any) -> None:
    assert fast[0] == slow[0]
    assert json.loads(fast[2]) == json.loads(slow[2])
    assert fast[2] == slow[2], "same JSON, different bytes"
    f = {k: v for k, v in fast[1].items() if k not in VOLATILE}
    s = {k: v for k, v in slow[1].items() if k not in VOLATILE}
    assert f == s


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    from bazaar.storefront.services import orders

    monkeypatch.setattr(timezone, "now", lambda: FROZEN)
    monkeypatch.setattr(orders, "_order_number", lambda: "BZ-PARITY")  # random in production


@pytest.fixture
def shop(make_user: Any) -> dict[str, Any]:
    from bazaar.storefront.services import product_create, vendor_signup

    s = vendor_signup(
        username="parity-vendor",
        password="Tamarind-Kettle-Orbit-42",
        email="p@example.com",
        shop_name="Parity",
        slug="parity",
    )
    tea = product_create(owner=s.owner, name="Tea", mrp=Decimal("12"), price=Decimal("10"), stock=3)
    gone = product_create(owner=s.owner, name="Gone", mrp=Decimal("2"), price=Decimal("1"), stock=0)
    return {"tea": tea.pk, "gone": gone.pk}


def _order(items: list[dict[str, int]]) -> dict[str, Any]:
    return {"items": items, "customer_name": "Asha", "phone": "+91 98765 43210", "address": "1 Road"}


@pytest.mark.parametrize(
    "case",
    ["placed", "unknown_store", "unknown_product", "out_of_stock", "too_many"],
)
def test_order_fast_path_answers_as_django(shop: dict[str, Any], case: str) -> None:
    slug = "nope" if case == "unknown_store" else "parity"
    items = {
        "placed": [{"product_id": shop["tea"], "quantity": 2}],
        "unknown_store": [{"product_id": shop["tea"], "quantity": 1}],
        "unknown_product": [{"product_id": 999_999, "quantity": 1}],
        "out_of_stock": [{"product_id": shop["gone"], "quantity": 1}],
        "too_many": [{"product_id": shop["tea"], "quantity": 4}],
    }[case]
    from bazaar.storefront.models import Order, OrderIdempotencyKey, OrderItem

    fast, slow = _answers(
        "POST",
        f"/api/storefront/stores/{slug}/orders",
        _order(items),
        {"Idempotency-Key": f"parity-{case}"},
        rewind=(Order, OrderItem, OrderIdempotencyKey),
    )
    _same(fast, slow)
    assert (fast[0][:3] == "201") == (case == "placed")


def test_order_fast_path_leaves_schema_bounds_to_django(shop: dict[str, Any]) -> None:
    from bazaar.storefront.fast import _FIELDS, _LIMITS
    from bazaar.storefront.schemas import OrderIn

    assert set(OrderIn.model_fields) == _FIELDS
    too_long = _order([{"product_id": shop["tea"], "quantity": 1}])
    too_long["customer_name"] = "x" * (_LIMITS["customer_name"] + 1)
    with_nul = _order([{"product_id": shop["tea"], "quantity": 1}])
    with_nul["customer_name"] = "A\x00"
    for body in (too_long, with_nul):
        r = wsgi_call(
            FastPath(lambda e, s: s("599 Passed", []) or [b""]),
            "/api/storefront/stores/parity/orders",
            method="POST",
            body=json.dumps(body),
            HTTP_IDEMPOTENCY_KEY="k",
        )
        assert r[0].startswith("599"), "the fast path must hand schema violations to Django"


@pytest.fixture
def kv() -> dict[str, Any]:
    from bazaar.kvstore.services import apikey_authenticate, apikey_create, entry_set, tenant_create

    tenant = tenant_create(slug="parity")
    secret = apikey_create(tenant_id=tenant.pk, name="p").secret
    assert apikey_authenticate(secret) is not None  # a key the fast path already knows
    entry_set(tenant_id=tenant.pk, key="k", value=1)
    entry_set(tenant_id=tenant.pk, key="old", value="expired by the test that reads it")
    return {"auth": {"Authorization": f"Bearer {secret}"}, "secret": secret}


@pytest.mark.parametrize(
    "body",
    [
        {"value": {"a": 1}},
        {"value": 2, "ttl": 60},
        {"value": 3, "if_version": 1},
        {"value": 3, "if_version": 7},  # 409 version_conflict
        {"value": 3, "ttl": -1},  # 422 invalid_ttl
        {"value": "x" * 2_000_000},  # 413 value_too_large
    ],
    ids=["set", "ttl", "cas", "cas_conflict", "bad_ttl", "too_large"],
)
def test_kv_put_fast_path_answers_as_django(kv: dict[str, Any], body: dict[str, Any]) -> None:
    fast, slow = _answers("PUT", "/api/kv/keys/k", body, kv["auth"])
    _same(fast, slow)


def _get_answers(kv: dict[str, Any], path: str, headers: dict[str, str], warm: bool) -> tuple[Any, Any]:
    """A KV GET through the fast path and through Django, each starting from an empty cache (a fresh namespace,
    the API key re-checked so the fast path knows it); with ``warm`` each side first reads the key twice."""
    from bazaar.core import cache
    from bazaar.kvstore.services import apikey_authenticate

    extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in {**kv["auth"], **headers}.items()}
    auth = {"HTTP_AUTHORIZATION": kv["auth"]["Authorization"]}
    django_app = get_wsgi_application()
    passed: list[bool] = []

    def behind(environ: dict[str, Any], start_response: Any) -> Any:
        passed.append(True)
        return django_app(environ, start_response)

    answers = []
    for app in (with_csp(FastPath(behind)), django_app):
        cache.set_prefix(cache.new_test_prefix())
        assert apikey_authenticate(kv["secret"]) is not None
        with _rolled_back():
            if warm:  # twice: the fast path stores a cold miss on its second time (core.cache.admit)
                wsgi_call(app, path, **auth)
                wsgi_call(app, path, **auth)
            answers.append(wsgi_call(app, path, **extra))
    assert passed == [], f"GET {path}: the fast path handed this case to Django"
    return answers[0], answers[1]


@pytest.mark.parametrize(
    ("case", "path", "headers", "warm", "status"),
    [
        ("miss", "/api/kv/keys/k", {}, False, 200),
        ("hit", "/api/kv/keys/k", {}, True, 200),
        ("miss_not_modified", "/api/kv/keys/k", {"If-None-Match": '"1"'}, False, 304),
        ("absent", "/api/kv/keys/nope", {}, False, 404),
        ("absent_cached", "/api/kv/keys/nope", {}, True, 404),
        ("expired", "/api/kv/keys/old", {}, False, 404),
        ("expired_cached", "/api/kv/keys/old", {}, True, 404),
    ],
)
def test_kv_get_fast_path_answers_as_django(
    kv: dict[str, Any], case: str, path: str, headers: dict[str, str], warm: bool, status: int
) -> None:
    """Hits, misses (built by the fast path itself: one statement, then stored), 304s and 404s: the same bytes,
    status and headers as the API view's."""
    from bazaar.kvstore.models import Entry

    Entry.objects.filter(key="old").update(expires_at=FROZEN - dt.timedelta(seconds=1))
    fast, slow = _get_answers(kv, path, headers, warm)
    assert int(fast[0].split()[0]) == status
    if status == 304:
        assert fast[0] == slow[0]
        assert fast[2] == slow[2] == b""
        # A 304 has no body: Django still labels it text/html with Content-Length 0; the fast path sends neither
        # (RFC 9110 15.4.5), every other header is the same.
        bodyless = {"content-type", "content-length"}
        assert _headers_without(fast[1], bodyless) == _headers_without(slow[1], bodyless)
    else:
        _same(fast, slow)


def _headers_without(headers: Any, names: set[str]) -> Any:
    items = headers.items() if isinstance(headers, dict) else headers
    return sorted((k.lower(), v) for k, v in items if k.lower() not in names)


def test_kv_get_fast_miss_never_stores_over_a_newer_write(kv: dict[str, Any]) -> None:
    """The fast path's miss is tagged with the generation read *before* its query: a write that commits between
    that lookup and the store makes the stored copy unservable, so the next read sees the write."""
    from bazaar.core import cache
    from bazaar.kvstore.cache import VARIANT, entry_scope
    from bazaar.kvstore.models import Entry
    from bazaar.kvstore.selectors import entry_stored
    from bazaar.kvstore.services import entry_set

    entry = Entry.objects.get(key="k")
    scope = entry_scope(entry.tenant_id, "k")
    look = cache.lookup(scope, VARIANT)
    assert look is not None
    assert look.found is None
    ready = cache.ready_to_fill(look)
    assert ready is not None
    old = entry_stored(tenant_id=entry.tenant_id, key="k", now=FROZEN)  # read before the write commits
    entry_set(tenant_id=entry.tenant_id, key="k", value="newer")  # commits and bumps the generation
    cache.fill(ready, old)
    again = cache.lookup(scope, VARIANT)
    assert again is not None
    assert again.found is None  # the old copy is never served
    assert b'"newer"' in entry_stored(tenant_id=entry.tenant_id, key="k", now=FROZEN)


@pytest.fixture
def desk(make_user: Any, token_for: Any) -> dict[str, Any]:
    from bazaar.rentals.services import copies_add, customer_create, rental_rent, title_create

    staff = make_user("parity-clerk", is_staff=True)
    title = title_create(title="Parity", author="Bazaar", copies=0)
    copies_add(title_id=title.pk, barcodes=["PA-1", "PA-2"])
    full = title_create(title="All Out", author="Bazaar", copies=0)
    copies_add(title_id=full.pk, barcodes=["PA-3"])
    customer = customer_create(name="Parity Reader")
    out = rental_rent(customer_id=customer.pk, barcode="PA-3")
    token = token_for(staff)
    from bazaar.accounts.services import token_authenticate

    assert token_authenticate(token) is not None
    return {
        "customer": customer.pk,
        "title": title.pk,
        "full": full.pk,
        "rental": out.pk,
        "auth": {"Authorization": f"Bearer {token}"},
    }


@pytest.mark.parametrize("case", ["rent", "unknown_customer", "unknown_title", "no_copy_free"])
def test_rent_fast_path_answers_as_django(desk: dict[str, Any], case: str) -> None:
    body = {
        "rent": {"customer_id": desk["customer"], "title_id": desk["title"]},
        "unknown_customer": {"customer_id": 999_999, "title_id": desk["title"]},
        "unknown_title": {"customer_id": desk["customer"], "title_id": 999_999},
        "no_copy_free": {"customer_id": desk["customer"], "title_id": desk["full"]},
    }[case]
    from bazaar.rentals.models import Rental

    fast, slow = _answers("POST", "/api/rentals/rentals", body, desk["auth"], rewind=(Rental,))
    _same(fast, slow)


@pytest.mark.parametrize("case", ["return", "unknown_rental"])
def test_return_fast_path_answers_as_django(desk: dict[str, Any], case: str) -> None:
    rental = desk["rental"] if case == "return" else 999_999
    fast, slow = _answers("POST", f"/api/rentals/rentals/{rental}/return", b"", desk["auth"])
    _same(fast, slow)


@pytest.mark.parametrize(
    "value",
    ["a\x00", "bell\x07", "back\bspace", "tab\there", "\ud800", "caf\u00e9"],
    ids=["nul", "bell", "backspace", "tab", "lone_surrogate", "accent"],
)
def test_kv_put_fast_path_never_stores_what_the_api_refuses(kv: dict[str, Any], value: str) -> None:
    """A value the API's text rule refuses (422 invalid_text) is handed to Django by the fast path, never stored."""
    body = json.dumps({"value": value})
    with _rolled_back():
        django = wsgi_call(
            get_wsgi_application(),
            "/api/kv/keys/k",
            method="PUT",
            body=body,
            HTTP_AUTHORIZATION=kv["auth"]["Authorization"],
        )
    if not django[0].startswith("422"):
        return  # allowed text: either path may answer it
    assert json.loads(django[2])["code"] == "invalid_text"
    r = wsgi_call(
        FastPath(lambda e, s: s("599 Passed", []) or [b""]),
        "/api/kv/keys/k",
        method="PUT",
        body=body,
        HTTP_AUTHORIZATION=kv["auth"]["Authorization"],
    )
    assert r[0].startswith("599"), "the fast path must hand control characters to Django"
