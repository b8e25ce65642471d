"""Error codes are part of the contract (issue 14): each operation's OpenAPI lists, per status, the codes it can
answer — core's machinery derived from the operation's shape (``bazaar.config.openapi._machinery``), its app's
declared beside the route (``@answers``, ``bazaar.core.codes``).

Both directions are held by the test run (``tests/contract/answers.py``): every answer any test provokes must
be declared (the ``answers_declared`` fixture fails the test otherwise), and every declared code must be answered
somewhere in the observing tests or be in ``answers.FAULT_ONLY`` (checked when the session ran them all:
``make codes-check``). This module provokes what the machinery answers to every operation of a shape — malformed
and non-JSON bodies, oversize bodies, a signed-in session without its CSRF token, a wrong JSON type, a date out
of range, control characters, integers past 64 bits, datetimes without an offset — as the operation's legitimate
caller, and checks that nothing was written.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import BOUNDARY, encode_multipart
from django.utils import timezone

from tests.contract import answers
from tests.contract.matrix_world import (
    ANON,
    KV_A,
    PASSWORD,
    STAFF,
    TRAINER_A,
    TRAINER_B,
    USERS,
    VENDOR_A,
    World,
    code_of,
    rolled_back,
    snapshot,
    world_fixture,  # noqa: F401  (the ``world`` fixture)
)
from tests.contract.test_access_matrix import API, APPS, Row, _path, _session

pytestmark = pytest.mark.django_db


def _document() -> dict[str, Any]:
    from bazaar.config.api import openapi_document

    return openapi_document()


def _legit(row: Row) -> str:
    return min(
        row.expect, key=lambda p: ("ok", "own").index(k) if (k := row.expect[p].kind) in ("ok", "own") else 9
    )


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _placed(doc: dict[str, Any], node: dict[str, Any], values: dict[str, Any]) -> Any:
    """A JSON body with ``values[kind]`` at the first field of one of those kinds inside ``node`` (objects and
    arrays followed), or None when there is none. Other fields are left out: the shared rules' code wins over
    ``missing``, as the API maps errors (``bazaar.config.api.on_validation_error``)."""
    node = _resolve(doc, node)
    for option in [_resolve(doc, o) for o in node.get("anyOf", [node])]:
        kind = option.get("format") if option.get("format") in ("date", "date-time") else option.get("type")
        if kind in values:
            return values[kind]
        if option.get("type") == "array" and "items" in option:
            inner = _placed(doc, option["items"], values)
            if inner is not None:
                return [inner]
        for name, prop in option.get("properties", {}).items():
            inner = _placed(doc, prop, values)
            if inner is not None:
                return {name: inner}
    return None


#: A JSON value of the wrong type for each kind of field (``bazaar.core.schemas._strict``).
WRONG_TYPE = {"integer": "1", "boolean": "1", "number": True, "date": 0, "date-time": 0}
TOO_EARLY = {"date": "1800-01-01", "date-time": "1800-01-01T00:00:00+00:00"}


def _op(doc: dict[str, Any], row: Row) -> dict[str, Any]:
    return dict(doc["paths"][row.path][row.method.lower()])


def _call(
    row: Row, world: World, principal: str, body: bytes, content_type: str, client: Client | None = None
) -> Any:
    client = client or Client()
    headers = {**row.headers, **world.headers(principal)}
    method = getattr(client, row.method.lower())
    return method(_path(row, world), body, content_type=content_type, **headers)


def _refused(row: Row, world: World, response: Any, want: tuple[int, str | None]) -> None:
    where = f"{row.method} {row.path}"
    got = (response.status_code, code_of(response))
    assert got == want if want[1] else got[0] == want[0], f"{where}: got {got}, want {want}"
    assert snapshot() == world.baseline, f"{where}: refused, but the database changed"


MAX_BODY = settings.MAX_REQUEST_BODY_BYTES


def _json_rows(doc: dict[str, Any]) -> list[Row]:
    """The operations that take a JSON body (the return's is optional and has no row body)."""
    return [
        r
        for r in API
        if r.form == "json" and "application/json" in _op(doc, r).get("requestBody", {}).get("content", {})
    ]


@pytest.mark.parametrize("app", APPS)
def test_json_bodies_refused_by_the_machinery(app: str, world: World, settings: Any) -> None:
    """Malformed JSON 400, another content type 415, an oversize body 413, a wrong JSON type or a date out of
    range 422 — for every JSON body operation of the app, as its legitimate caller; nothing written."""
    doc = _document()
    assert len(_json_rows(doc)) > 30
    for row in (r for r in _json_rows(doc) if r.path.startswith(f"/api/{app}/")):
        principal = _legit(row)
        schema = _op(doc, row)["requestBody"]["content"]["application/json"]["schema"]
        with rolled_back():
            _refused(
                row, world, _call(row, world, principal, b'{"a', "application/json"), (400, "malformed_json")
            )
        with rolled_back():
            response = _call(row, world, principal, b"{}", "text/plain")
            _refused(row, world, response, (415, "unsupported_media_type"))
        with rolled_back():
            settings.MAX_REQUEST_BODY_BYTES = 1000
            big = json.dumps({"x": "y" * 2000}).encode()
            _refused(
                row, world, _call(row, world, principal, big, "application/json"), (413, "payload_too_large")
            )
            settings.MAX_REQUEST_BODY_BYTES = MAX_BODY
        wrong = _placed(doc, schema, WRONG_TYPE)
        if wrong is not None:
            with rolled_back():
                response = _call(row, world, principal, json.dumps(wrong).encode(), "application/json")
                _refused(row, world, response, (422, "invalid_type"))
        early = _placed(doc, schema, TOO_EARLY)
        if early is not None:
            with rolled_back():
                response = _call(row, world, principal, json.dumps(early).encode(), "application/json")
                _refused(row, world, response, (422, "out_of_range"))


SESSION_WRITES = [
    r
    for r in API
    if r.method in ("POST", "PUT", "PATCH", "DELETE")
    and r.form != "page"
    and any(r.expect[p].kind in ("ok", "own") or r.expect[p].status == 403 for p in USERS)
]


def test_a_session_without_its_csrf_token_is_403(world: Any) -> None:
    """Every user write taken with a session answers 403 ``csrf_failed`` to a signed-in session that does not
    send ``X-CSRFToken``, and writes nothing."""
    doc = _document()
    checked = 0
    for row in SESSION_WRITES:
        op = _op(doc, row)
        if {"session": []} not in op.get("security", []):
            continue
        principal = next(
            p for p in USERS if row.expect[p].kind in ("ok", "own") or row.expect[p].status == 403
        )
        client = Client(enforce_csrf_checks=True)
        client.cookies[settings.SESSION_COOKIE_NAME] = _session(world, principal)
        with rolled_back():
            data = row.body(world.ids) if callable(row.body) else row.body
            body = json.dumps(data or {}).encode() if row.form == "json" else b"{}"
            response = getattr(client, row.method.lower())(
                _path(row, world), body, content_type="application/json", **row.headers
            )
            _refused(row, world, response, (403, "csrf_failed"))
        checked += 1
    assert checked > 20


def test_every_declared_code_is_in_a_registry_and_fault_codes_are_core_codes() -> None:
    from bazaar.config.openapi import registries

    known = {c for codes in registries().values() for c in codes}
    for (method, path), statuses in answers.declared().items():
        for status, codes in statuses.items():
            assert codes, f"{method} {path}: {status} without a code"
            assert codes <= known, f"{method} {path} {status}: {codes - known}"
    assert set(answers.FAULT_ONLY) <= registries()["core"]


def test_every_race_only_answer_is_declared_where_it_says() -> None:
    """``answers.RACE_ONLY`` exempts (operation, status, code) from the reachability check: each must be declared."""
    declared = answers.declared()
    missing = [
        key for key in answers.RACE_ONLY if key[3] not in declared.get(key[:2], {}).get(key[2], frozenset())
    ]
    assert missing == []


# --- the codes of the apps that no other test provokes through the API -------------------------------------


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # with {world id} placeholders
    who: str
    body: Any  # a dict, bytes (a raw body) or a callable of the world's ids
    want: tuple[int, str]
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    #: Calls made first (method, path, who[, body]) in the same savepoint.
    before: tuple[tuple[Any, ...], ...] = ()
    #: State the API cannot make by itself (time passing, a desk check-in, a file gone), arranged after ``before``
    #: in the same savepoint; returns ids to add to the world's for the case's path and body.
    setup: Callable[[World], dict[str, Any]] | None = None
    #: Models whose rows this refusal changes by design (an accepted offer found expired is closed, then 409);
    #: every other row must stay as it was.
    writes: frozenset[str] = frozenset()


_NEW_VENDOR = {"username": "newbie", "password": PASSWORD, "email": "n@example.com", "shop_name": "New"}
_ORDER = {"customer_name": "Zed", "phone": "+91 90000 00000", "address": "Somewhere 1"}
_TRAINER = {"id": "tN", "first_name": "New", "last_name": "T", "date_of_birth": "2000-01-01"}
_KEY = {"HTTP_IDEMPOTENCY_KEY": "codes-1"}


def _line(ids: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"product_id": ids["product_id"], "quantity": 1, **extra}


def _overdue(world: World) -> dict[str, Any]:
    """The open rental's due date passed (time moved on)."""
    from bazaar.rentals.models import Rental

    now = timezone.now()
    Rental.objects.filter(pk=world.ids["rental_id"]).update(
        rented_at=now - dt.timedelta(days=30), due_at=now - dt.timedelta(days=1)
    )
    return {}


def _checked_in(world: World) -> dict[str, Any]:
    """The desk checks the rented copy in (a page, not the API): it goes on the hold shelf for the waiting
    patron (``hold_put_aside``)."""
    from bazaar.rentals import services

    rental, hold = services.rental_checkin(barcode=world.ids["barcode"])
    assert hold is not None
    assert hold.customer_id == world.ids["other_customer_id"]
    return {"held_copy_id": rental.copy_id}


def _export_gone(world: World) -> dict[str, Any]:
    """The finished export's file was removed (the retention sweep, a disk cleaned by hand)."""
    from bazaar.rentals.models import ExportJob
    from bazaar.rentals.services.exports import export_path

    export_path(ExportJob.objects.get(pk=world.ids["export_id"])).unlink()
    return {}


def _offer_lapsed(world: World) -> dict[str, Any]:
    """The open offer's expiry passed before the beat task closed it."""
    from bazaar.trading.models import TradeOffer

    TradeOffer.objects.filter(pk=world.ids["offer_id"]).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    return {}


def _csv(kind: str, content: bytes) -> bytes:
    return encode_multipart(BOUNDARY, {"file": SimpleUploadedFile(f"{kind}.csv", content)})


_MULTIPART = f"multipart/form-data;boundary={BOUNDARY}"  # not MULTIPART_CONTENT: sent as it is
_TRAINERS = b"id,firstName,lastName,dateOfBirth\n"
_POKEMON = b"id,nickname,species,level,owner,dateOfOwnership\n"
#: CSV imports refused before anything is written: (kind, file, answer).
_IMPORTS = [
    ("trainers", _TRAINERS, (422, "empty_file")),
    ("pokemon", _POKEMON, (422, "empty_file")),
    ("trainers", _TRAINERS + b"tN,A,B,not-a-date\n", (422, "import_invalid")),
    ("pokemon", _POKEMON + b"pN,\xff,Onix,5,tA,\n", (422, "invalid_encoding")),
    ("trainers", b"name,age\nbob,3\n", (422, "wrong_columns")),
    ("pokemon", b"name,age\nbob,3\n", (422, "wrong_columns")),
]
_NDJSON = "application/x-ndjson"
_BIG = "x" * 70_000  # past KVSTORE_MAX_VALUE_BYTES (64 KiB), well inside the 2 MiB body limit
_RENEW = ("POST", "/api/rentals/rentals/{rental_id}/renew", STAFF)
_ISBN_TITLE = ("POST", "/api/rentals/titles", STAFF, {"title": "T", "author": "A", "isbn": "9780306406157"})
_RENT_TITLE = (
    "POST",
    "/api/rentals/rentals",
    STAFF,
    {"customer_id": "{customer_id}", "title_id": "{title_id}"},
)


CASES = [
    # storefront
    Case(
        "POST", "/api/storefront/signup", ANON, {**_NEW_VENDOR, "shop_name": " "}, (422, "invalid_shop_name")
    ),
    Case(
        "POST", "/api/storefront/signup", ANON, {**_NEW_VENDOR, "currency": "ZZZ"}, (422, "invalid_currency")
    ),
    Case(
        "POST", "/api/storefront/signup", ANON, {**_NEW_VENDOR, "slug": "Not A Slug"}, (422, "invalid_slug")
    ),
    Case("POST", "/api/storefront/signup", ANON, {**_NEW_VENDOR, "slug": "bravo-tea"}, (409, "slug_taken")),
    Case(
        "POST", "/api/storefront/shop", TRAINER_A, {"name": "N", "slug": "Not A Slug"}, (422, "invalid_slug")
    ),
    Case(
        "POST",
        "/api/storefront/shop",
        TRAINER_A,
        {"name": "N", "contact_email": "nope"},
        (422, "invalid_email"),
    ),
    Case("POST", "/api/storefront/shop", TRAINER_A, {}, (422, "invalid_shop_name")),
    Case("POST", "/api/storefront/shop", TRAINER_A, {"name": "N", "slug": "bravo-tea"}, (409, "slug_taken")),
    Case("PATCH", "/api/storefront/shop", VENDOR_A, {"name": " "}, (422, "invalid_shop_name")),
    Case("PATCH", "/api/storefront/shop", VENDOR_A, {"currency": "ZZZ"}, (422, "invalid_currency")),
    Case("PATCH", "/api/storefront/shop", VENDOR_A, {"slug": "bravo-tea"}, (409, "slug_taken")),
    Case(
        "POST",
        "/api/storefront/products",
        VENDOR_A,
        {"name": " ", "mrp": "2", "price": "1"},
        (422, "invalid_name"),
    ),
    Case("PATCH", "/api/storefront/products/{product_id}", VENDOR_A, {"name": " "}, (422, "invalid_name")),
    Case(
        "POST",
        "/api/storefront/orders/{order_id}/payment",
        VENDOR_A,
        {"payment_status": "bogus"},
        (422, "invalid_payment_status"),
    ),
    Case(
        "POST",
        "/api/storefront/stores/{slug}/orders",
        ANON,
        lambda ids: {**_ORDER, "items": [_line(ids, unit_price="90.00"), _line(ids, unit_price="80.00")]},
        (422, "invalid_line"),
        _KEY,
    ),
    Case(
        "POST",
        "/api/storefront/stores/{slug}/orders",
        ANON,
        lambda ids: {**_ORDER, "customer_name": " ", "items": [_line(ids)]},
        (422, "invalid_customer"),
        _KEY,
    ),
    Case(
        "POST",
        "/api/storefront/stores/{slug}/orders",
        ANON,
        lambda ids: {**_ORDER, "items": [_line(ids)]},
        (422, "invalid_idempotency_key"),
        {"HTTP_IDEMPOTENCY_KEY": "k" * 81},
    ),
    Case(
        "POST",
        "/api/storefront/stores/{slug}/orders",
        ANON,
        lambda ids: {**_ORDER, "items": [_line(ids)]},
        (409, "product_unavailable"),
        _KEY,
        before=(("POST", "/api/storefront/products/{product_id}/toggle", VENDOR_A),),
    ),
    Case(
        "POST",
        "/api/storefront/stores/{slug}/orders",
        ANON,
        lambda ids: {**_ORDER, "items": [_line(ids)] * 51},
        (422, "too_many_lines"),
        _KEY,
    ),
    Case(
        "POST",
        "/api/storefront/stores/{slug}/orders",
        ANON,
        lambda ids: {**_ORDER, "items": [_line(ids, quantity=1001)]},
        (422, "invalid_quantity"),
        _KEY,
    ),
    Case(
        "PATCH",
        "/api/storefront/products/{product_id}",
        VENDOR_A,
        {"name": "Other"},
        (409, "duplicate_name"),
        before=(("POST", "/api/storefront/products", VENDOR_A, {"name": "Other", "mrp": "2", "price": "1"}),),
    ),
    Case(
        "POST",
        "/api/storefront/orders/{order_id}/payment",
        VENDOR_A,
        {"payment_status": "refunded"},
        (409, "illegal_transition"),
    ),
    Case("GET", "/api/storefront/orders/export.csv?status=weird", VENDOR_A, None, (422, "invalid_status")),
    # rentals
    Case("POST", "/api/rentals/titles", STAFF, {"title": " ", "author": "A"}, (422, "required")),
    Case(
        "POST",
        "/api/rentals/titles",
        STAFF,
        {"title": "T", "author": "A", "kind": "bogus"},
        (422, "invalid_kind"),
    ),
    Case("POST", "/api/rentals/customers", STAFF, {"name": "N", "status": "bogus"}, (422, "invalid_status")),
    Case("POST", "/api/rentals/titles/{title_id}/copies", STAFF, {"count": 0}, (422, "invalid_count")),
    Case(
        "POST",
        "/api/rentals/titles/{title_id}/copies",
        STAFF,
        lambda ids: {"barcodes": [ids["barcode"]]},
        (409, "barcode_taken"),
    ),
    Case(
        "POST",
        "/api/rentals/titles/{title_id}/copies",
        STAFF,
        {"barcodes": ["a\x00b"]},
        (422, "invalid_text"),
    ),
    Case("PATCH", "/api/rentals/copies/{copy_id}", STAFF, {"state": "bogus"}, (422, "invalid_state")),
    Case("POST", "/api/rentals/customers", STAFF, {"name": "N", "phone": "call me"}, (422, "invalid_phone")),
    Case(
        "POST",
        "/api/rentals/holds",
        STAFF,
        lambda ids: {"customer_id": ids["other_customer_id"], "title_id": ids["title_id"]},
        (409, "hold_exists"),
    ),
    Case(
        "POST",
        "/api/rentals/rentals",
        STAFF,
        lambda ids: {"customer_id": ids["customer_id"], "barcode": ids["barcode"]},
        (409, "copy_not_available"),
    ),
    Case(
        "POST",
        "/api/rentals/rentals",
        STAFF,
        lambda ids: {
            "customer_id": ids["customer_id"],
            "copy_id": ids["copy_id"],
            "due_at": "2001-01-01T00:00:00+00:00",
        },
        (422, "invalid_due_date"),
    ),
    Case(
        "POST",
        "/api/rentals/returns",
        STAFF,
        lambda ids: {"barcode": ids["barcode"]},
        (409, "copy_not_rented"),
        before=(("POST", "/api/rentals/rentals/{rental_id}/return", STAFF),),
    ),
    Case(
        "POST",
        "/api/rentals/titles",
        STAFF,
        {"title": "Again", "author": "A", "isbn": "9780306406157"},
        (409, "isbn_taken"),
        before=(_ISBN_TITLE,),
    ),
    Case(
        "POST",
        "/api/rentals/customers/{customer_id}/payments",
        STAFF,
        {"amount": "5.00", "received_at": "2099-01-01T00:00:00+00:00"},
        (422, "invalid_time"),
    ),
    Case(
        "PATCH",
        "/api/rentals/copies/{copy_id}",
        STAFF,
        {"state": "withdrawn"},
        (409, "copy_rented"),
        before=(
            (
                "POST",
                "/api/rentals/rentals",
                STAFF,
                {"customer_id": "{other_customer_id}", "copy_id": "{copy_id}"},
            ),
        ),
    ),
    # A backdating body sent as text/plain was ignored and the rental returned "now" (issue 14: 415, nothing written).
    Case(
        "POST",
        "/api/rentals/rentals/{rental_id}/return",
        STAFF,
        b'{"returned_at": "2026-01-01T00:00:00+00:00"}',
        (415, "unsupported_media_type"),
        content_type="text/plain",
    ),
    Case(
        "POST",
        "/api/rentals/rentals/{rental_id}/return",
        STAFF,
        b"--x\r\nnot really multipart",
        (400, "malformed_body"),
        content_type="multipart/form-data",
    ),
    Case("POST", "/api/rentals/customers", STAFF, {"name": " "}, (422, "invalid_name")),
    Case("PATCH", "/api/rentals/customers/{customer_id}", STAFF, {"email": "nope"}, (422, "invalid_email")),
    Case(
        "PATCH", "/api/rentals/customers/{customer_id}", STAFF, {"phone": "call me"}, (422, "invalid_phone")
    ),
    Case("PATCH", "/api/rentals/titles/{title_id}", STAFF, {"isbn": "123"}, (422, "invalid_isbn")),
    Case(
        "PATCH",
        "/api/rentals/titles/{title_id}",
        STAFF,
        {"isbn": "9780306406157"},
        (409, "isbn_taken"),
        before=(_ISBN_TITLE,),
    ),
    Case(
        "POST",
        "/api/rentals/holds",
        STAFF,
        lambda ids: {"customer_id": ids["customer_id"], "title_id": 987654},
        (404, "title_not_found"),
    ),
    Case(
        "POST",
        "/api/rentals/rentals",
        STAFF,
        lambda ids: {"customer_id": ids["customer_id"], "copy_id": 987654},
        (404, "copy_not_found"),
    ),
    Case(
        "POST",
        "/api/rentals/rentals",
        STAFF,
        lambda ids: {"customer_id": ids["customer_id"], "barcode": ids["barcode"]},
        (409, "copy_on_hold"),
        setup=_checked_in,
    ),
    Case(
        "PATCH",
        "/api/rentals/copies/{held_copy_id}",
        STAFF,
        {"state": "withdrawn"},
        (409, "copy_on_hold"),
        setup=_checked_in,
    ),
    Case(
        "POST",
        "/api/rentals/returns",
        STAFF,
        lambda ids: {"barcode": ids["barcode"], "returned_at": "2099-01-01T00:00:00+00:00"},
        (422, "return_in_future"),
    ),
    Case(
        "POST",
        "/api/rentals/returns",
        STAFF,
        lambda ids: {"barcode": ids["barcode"], "returned_at": "2001-01-01T00:00:00+00:00"},
        (422, "return_before_rent"),
    ),
    Case(
        *_RENEW,
        None,
        (409, "rental_closed"),
        before=(("POST", "/api/rentals/rentals/{rental_id}/return", STAFF),),
    ),
    Case(*_RENEW, None, (409, "rental_overdue"), setup=_overdue),
    Case(*_RENEW, None, (409, "renewal_limit_reached"), before=(_RENEW, _RENEW)),
    Case(
        *_RENEW,
        None,
        (409, "title_waited_for"),
        # The reader takes the title's two free copies; another patron holds the title.
        before=(_RENT_TITLE, _RENT_TITLE),
    ),
    Case(
        "GET",
        "/api/rentals/exports/{export_id}/download",
        STAFF,
        None,
        (409, "export_missing"),
        setup=_export_gone,
    ),
    # trading
    Case("POST", "/api/trading/trainers", STAFF, {**_TRAINER, "username": "nobody"}, (422, "unknown_user")),
    Case("POST", "/api/trading/trainers", STAFF, {**_TRAINER, "username": TRAINER_A}, (409, "user_taken")),
    Case(
        "POST",
        "/api/trading/pokemon",
        STAFF,
        {"id": "pkA1", "nickname": "N", "species": "Onix", "level": 5, "owner": "tA"},
        (409, "pokemon_exists"),
    ),
    Case(
        "POST",
        "/api/trading/exchange",
        STAFF,
        {"trainer_a": "tA", "trainer_b": "tB"},
        (422, "empty_exchange"),
    ),
    Case(
        "POST",
        "/api/trading/exchange",
        STAFF,
        {"trainer_a": "tA", "trainer_b": "tA", "a_gives": ["pkA1"]},
        (409, "self_exchange"),
    ),
    Case(
        "POST",
        "/api/trading/offers",
        TRAINER_A,
        {"proposer": "tA", "receiver": "tB", "give": ["pkA2"], "expires_in_days": 99},
        (422, "invalid_expiry"),
    ),
    Case(
        "POST",
        "/api/trading/offers",
        TRAINER_A,
        {"proposer": "tA", "receiver": "tB", "give": ["pkA2"], "message": "m" * 501},
        (422, "message_too_long"),
    ),
    Case(
        "POST",
        "/api/trading/offers/{offer_id}/accept",
        TRAINER_B,
        None,
        (409, "offer_not_open"),
        before=(("PATCH", "/api/trading/pokemon/pkA1", STAFF, {"owner": "tC"}),),
    ),
    *[
        Case("POST", f"/api/trading/import/{kind}", STAFF, _csv(kind, csv), want, content_type=_MULTIPART)
        for kind, csv, want in _IMPORTS
    ],
    Case(
        "POST",
        "/api/trading/import/pokemon",
        STAFF,
        b"--x\r\nnot really multipart",
        (400, "malformed_body"),
        content_type="multipart/form-data",
    ),
    Case("PATCH", "/api/trading/trainers/tC", STAFF, {"username": "nobody"}, (422, "unknown_user")),
    Case("PATCH", "/api/trading/trainers/tC", STAFF, {"username": TRAINER_A}, (409, "user_taken")),
    Case("PATCH", "/api/trading/pokemon/pkA2", STAFF, {"owner": "tZZ"}, (404, "trainer_not_found")),
    Case("GET", "/api/trading/trainers?offset=10001", ANON, None, (422, "offset_too_deep")),
    Case("GET", "/api/trading/pokemon?offset=10001", ANON, None, (422, "offset_too_deep")),
    Case(
        "POST",
        "/api/trading/offers",
        TRAINER_A,
        {"proposer": "tA", "receiver": "tB"},
        (422, "empty_exchange"),
    ),
    Case(
        "POST",
        "/api/trading/offers",
        TRAINER_A,
        {"proposer": "tA", "receiver": "tA", "give": ["pkA2"]},
        (409, "self_exchange"),
    ),
    Case(
        "POST",
        "/api/trading/offers",
        TRAINER_A,
        {"proposer": "tA", "receiver": "tB", "give": ["pkB2"]},
        (409, "exchange_invalid"),
    ),
    Case("POST", "/api/trading/offers/{offer_id}/counter", TRAINER_B, {}, (422, "empty_exchange")),
    Case(
        "POST",
        "/api/trading/offers/{offer_id}/counter",
        TRAINER_B,
        {"give": ["pkA2"]},
        (409, "exchange_invalid"),
    ),
    Case(
        "POST",
        "/api/trading/offers/{offer_id}/counter",
        TRAINER_B,
        {"give": ["pkB2"], "expires_in_days": 99},
        (422, "invalid_expiry"),
    ),
    Case(
        "POST",
        "/api/trading/offers/{offer_id}/counter",
        TRAINER_B,
        {"give": ["pkB2"], "message": "m" * 501},
        (422, "message_too_long"),
    ),
    Case(
        "POST",
        "/api/trading/offers/{offer_id}/counter",
        TRAINER_B,
        {"give": ["pkB2"]},
        (409, "offer_expired"),
        setup=_offer_lapsed,
    ),
    # Accepting an offer found expired or no longer possible closes it (committed), then answers 409.
    Case(
        "POST",
        "/api/trading/offers/{offer_id}/accept",
        TRAINER_B,
        None,
        (409, "offer_expired"),
        setup=_offer_lapsed,
        writes=frozenset({"trading.TradeOffer"}),
    ),
    Case(
        "POST",
        "/api/trading/offers/{offer_id}/accept",
        TRAINER_B,
        None,
        (409, "offer_invalid"),
        before=(
            (
                "POST",
                "/api/trading/exchange",
                STAFF,
                {"trainer_a": "tA", "trainer_b": "tC", "a_gives": ["pkA1"]},
            ),
        ),
        writes=frozenset({"trading.TradeOffer"}),
    ),
    Case(
        "POST",
        "/api/trading/offers/{offer_id}/cancel",
        TRAINER_A,
        None,
        (409, "offer_not_open"),
        before=(("POST", "/api/trading/offers/{offer_id}/decline", TRAINER_B),),
    ),
    # kvstore
    Case(
        "POST",
        "/api/kv/batch",
        KV_A,
        {"ops": [{"op": "set", "key": "k", "value": 1, "ttl": 2**64}]},
        (422, "out_of_range"),
    ),
    Case(
        "POST",
        "/api/kv/txn",
        KV_A,
        {"success": [{"op": "put", "key": "k", "value": 1, "ttl": 2**64}]},
        (422, "out_of_range"),
    ),
    Case("POST", "/api/kv/batch", KV_A, {"ops": []}, (422, "empty_batch")),
    Case(
        "POST",
        "/api/kv/batch",
        KV_A,
        {"ops": [{"op": "delete", "key": f"k{n}"} for n in range(1001)]},
        (422, "batch_too_large"),
    ),
    Case(
        "POST",
        "/api/kv/import",
        KV_A,
        b"\xff\n",
        (422, "invalid_encoding"),
        content_type="application/x-ndjson",
    ),
    Case("PUT", "/api/kv/keys/k", KV_A, b'{"value": NaN}', (422, "invalid_value")),
    Case("POST", "/api/kv/keys/c/incr", KV_A, {"by": -(2**63)}, (422, "invalid_increment")),
    Case("POST", "/api/kv/txn", KV_A, {"success": [{"op": "get", "key": "a\x01b"}]}, (422, "invalid_text")),
    Case("POST", "/api/kv/batch", KV_A, {"ops": [{"op": "delete", "key": "a\x01b"}]}, (422, "invalid_text")),
    Case(
        "POST",
        "/api/kv/txn",
        KV_A,
        {"success": [{"op": "incr", "key": "c", "by": -(2**63)}]},
        (422, "invalid_increment"),
    ),
    Case(
        "POST",
        "/api/kv/txn",
        KV_A,
        b'{"compare": [{"key": "k", "target": "value", "value": NaN}]}',
        (422, "invalid_value"),
    ),
    Case(
        "POST",
        "/api/kv/txn",
        KV_A,
        {"success": [{"op": "put", "key": "k", "value": _BIG}]},
        (413, "value_too_large"),
    ),
    Case(
        "POST",
        "/api/kv/txn",
        KV_A,
        {"success": [{"op": "incr", "key": "c", "by": 1}]},
        (409, "counter_overflow"),
        before=(("PUT", "/api/kv/keys/c", KV_A, {"value": 2**63 - 1}),),
    ),
    Case(
        "POST",
        "/api/kv/batch",
        KV_A,
        {"ops": [{"op": "set", "key": "a", "value": 1}, {"op": "set", "key": "a", "value": 2}]},
        (422, "duplicate_key"),
    ),
    Case(
        "POST",
        "/api/kv/batch",
        KV_A,
        {"ops": [{"op": "set", "key": "a", "value": 1, "ttl": 0}]},
        (422, "invalid_ttl"),
    ),
    Case(
        "POST",
        "/api/kv/batch",
        KV_A,
        {"ops": [{"op": "delete", "key": "a", "if_version": 0}]},
        (422, "invalid_if_version"),
    ),
    Case(
        "POST",
        "/api/kv/batch",
        KV_A,
        b'{"ops": [{"op": "set", "key": "a", "value": NaN}]}',
        (422, "invalid_value"),
    ),
    Case(
        "POST",
        "/api/kv/batch",
        KV_A,
        {"ops": [{"op": "set", "key": "a", "value": _BIG}]},
        (413, "value_too_large"),
    ),
    Case(
        "POST",
        "/api/kv/import",
        KV_A,
        b'{"key": "a", "value": 1}\n{"key": "a", "value": 2}\n',
        (422, "duplicate_key"),
        content_type=_NDJSON,
    ),
    Case(
        "POST",
        "/api/kv/import",
        KV_A,
        b'{"key": "", "value": 1}\n',
        (422, "invalid_key"),
        content_type=_NDJSON,
    ),
    Case(
        "POST",
        "/api/kv/import",
        KV_A,
        b'{"key": "a", "value": 1, "ttl": 0}\n',
        (422, "invalid_ttl"),
        content_type=_NDJSON,
    ),
    Case(
        "POST",
        "/api/kv/import",
        KV_A,
        b'{"key": "a", "value": NaN}\n',
        (422, "invalid_value"),
        content_type=_NDJSON,
    ),
    Case(
        "POST",
        "/api/kv/import",
        KV_A,
        json.dumps({"key": "a", "value": _BIG}).encode(),
        (413, "value_too_large"),
        content_type=_NDJSON,
    ),
    Case("DELETE", "/api/kv/tenants/{tenant_slug}/keys/987654", STAFF, None, (404, "key_not_found")),
]


# --- the answers that only schemathesis's examples reached (issue 19) ----------------------------------------
# Until these, 76 declared (operation, status, code) were answered only by what the fuzzer happened to draw, so
# the schema had to stay eager (a lazy one draws other examples). Each is provoked here on purpose, as the
# operation's legitimate caller, and the same test checks that nothing was written.

_GONE = 987654  # an id that names nothing (the world's ``missing`` ids)
_NO_FILE = encode_multipart(BOUNDARY, {"note": "no file part"})
_NUL_CSV = b"id,firstName,lastName,dateOfBirth\ntN,A\x00,B,2000-01-01\n"
_PAGES = [
    ("/api/rentals/customers", STAFF),
    ("/api/rentals/rentals", STAFF),
    ("/api/storefront/orders", VENDOR_A),
    ("/api/storefront/products", VENDOR_A),
    ("/api/trading/offers", TRAINER_A),
    ("/api/trading/pokemon", ANON),
]
_NOT_FOUND = [
    ("DELETE", "/api/rentals/holds/{_GONE}", STAFF, None, "hold_not_found"),
    ("GET", "/api/rentals/customers/{_GONE}", STAFF, None, "customer_not_found"),
    ("GET", "/api/rentals/customers/{_GONE}/statement", STAFF, None, "customer_not_found"),
    ("PATCH", "/api/rentals/customers/{_GONE}", STAFF, {"name": "N"}, "customer_not_found"),
    ("POST", "/api/rentals/customers/{_GONE}/payments", STAFF, {"amount": "5.00"}, "customer_not_found"),
    ("GET", "/api/rentals/exports/{_GONE}", STAFF, None, "export_not_found"),
    ("GET", "/api/rentals/exports/{_GONE}/download", STAFF, None, "export_not_found"),
    ("GET", "/api/rentals/rentals/{_GONE}", STAFF, None, "rental_not_found"),
    ("POST", "/api/rentals/rentals/{_GONE}/renew", STAFF, None, "rental_not_found"),
    ("GET", "/api/rentals/titles/{_GONE}/copies", STAFF, None, "title_not_found"),
    ("POST", "/api/rentals/titles/{_GONE}/copies", STAFF, {"count": 1}, "title_not_found"),
    ("PATCH", "/api/rentals/titles/{_GONE}", STAFF, {"title": "T"}, "title_not_found"),
    ("PATCH", "/api/rentals/copies/{_GONE}", STAFF, {"state": "lost"}, "copy_not_found"),
    ("GET", "/api/storefront/stores/no-such-shop", ANON, None, "shop_not_found"),
    ("GET", "/api/storefront/stores/{slug}/orders/BZ-NOPE", ANON, None, "order_not_found"),
    ("GET", "/api/trading/import/jobs/{_GONE}", STAFF, None, "job_not_found"),
    ("GET", "/api/trading/pokemon/pkZZ/history", ANON, None, "pokemon_not_found"),
    ("PATCH", "/api/trading/pokemon/pkZZ", STAFF, {"level": 5}, "pokemon_not_found"),
    ("GET", "/api/trading/trainers/tZZ", ANON, None, "trainer_not_found"),
    ("PATCH", "/api/trading/trainers/tZZ", STAFF, {"first_name": "X"}, "trainer_not_found"),
    ("DELETE", "/api/trading/trainers/tZZ", STAFF, None, "trainer_not_found"),
    (
        "POST",
        "/api/trading/pokemon",
        STAFF,
        {"id": "pkN", "nickname": "N", "species": "Onix", "level": 5, "owner": "tZZ"},
        "trainer_not_found",
    ),
    (
        "POST",
        "/api/trading/exchange",
        STAFF,
        {"trainer_a": "tA", "trainer_b": "tZZ", "a_gives": ["pkA1"]},
        "trainer_not_found",
    ),
    (
        "POST",
        "/api/trading/offers",
        TRAINER_A,
        {"proposer": "tA", "receiver": "tZZ", "give": ["pkA2"]},
        "trainer_not_found",
    ),
    ("GET", "/api/kv/tenants/no-such-tenant/keys", STAFF, None, "tenant_not_found"),
    ("POST", "/api/kv/tenants/no-such-tenant/keys", STAFF, {}, "tenant_not_found"),
]
#: A body (or query) the schema itself refuses, with no shared rule's code: 422 ``validation_error``.
_SCHEMA_REFUSED = [
    ("DELETE", "/api/trading/trainers/tC?cascade=maybe", STAFF, None),
    ("GET", "/api/trading/pokemon?level_min=high", ANON, None),
    ("POST", "/api/kv/batch", KV_A, {}),
    ("POST", "/api/kv/keys/c/incr", KV_A, {"by": 1, "step": 2}),
    ("POST", "/api/kv/tenants", STAFF, {}),
    ("POST", "/api/kv/tenants/{tenant_slug}/keys", STAFF, {"name": "n", "role": "admin"}),
    ("POST", "/api/rentals/customers", STAFF, {}),
    ("POST", "/api/rentals/holds", STAFF, {}),
    ("POST", "/api/rentals/returns", STAFF, {}),
    ("POST", "/api/storefront/shop", TRAINER_A, {"name": "N", "owner": 1}),
    ("PATCH", "/api/storefront/shop", VENDOR_A, {"name": "n" * 121}),
    ("POST", "/api/trading/offers/{offer_id}/counter", TRAINER_B, {"give": ["pkB2"], "proposer": "tB"}),
]

FUZZED_CASES = [
    *[Case("GET", f"{path}?limit=500", who, None, (422, "invalid_limit")) for path, who in _PAGES],
    *[
        Case(method, path.replace("{_GONE}", str(_GONE)), who, body, (404, code))
        for method, path, who, body, code in _NOT_FOUND
    ],
    *[
        Case(method, path, who, body, (422, "validation_error"))
        for method, path, who, body in _SCHEMA_REFUSED
    ],
    *[
        Case(
            "POST",
            f"/api/trading/import/{kind}",
            STAFF,
            _NO_FILE,
            (422, "validation_error"),
            content_type=_MULTIPART,
        )
        for kind in ("trainers", "pokemon")
    ],
    *[
        Case(
            "POST",
            f"/api/trading/import/{kind}",
            STAFF,
            _csv(kind, _NUL_CSV),
            (422, "not_csv"),
            content_type=_MULTIPART,
        )
        for kind in ("trainers", "pokemon")
    ],
    Case(
        "POST",
        "/api/trading/import/trainers",
        STAFF,
        _csv("trainers", _TRAINERS + b"tN,\xff,B,2000-01-01\n"),
        (422, "invalid_encoding"),
        content_type=_MULTIPART,
    ),
    # storefront
    Case(
        "POST", "/api/storefront/signup", ANON, {**_NEW_VENDOR, "username": VENDOR_A}, (409, "username_taken")
    ),
    Case("POST", "/api/storefront/signup", ANON, {**_NEW_VENDOR, "email": "nope"}, (422, "invalid_email")),
    Case(
        "POST", "/api/storefront/shop", TRAINER_A, {"name": "N", "currency": "ZZZ"}, (422, "invalid_currency")
    ),
    Case("PATCH", "/api/storefront/shop", VENDOR_A, {"contact_email": "nope"}, (422, "invalid_email")),
    Case("PATCH", "/api/storefront/shop", VENDOR_A, {"slug": "Not A Slug"}, (422, "invalid_slug")),
    Case(
        "POST",
        "/api/storefront/products",
        VENDOR_A,
        {"name": "Dear", "mrp": "1", "price": "2"},
        (422, "price_above_mrp"),
    ),
    Case(
        "POST",
        "/api/storefront/orders/{order_id}/status",
        VENDOR_A,
        {"status": "bogus"},
        (422, "invalid_status"),
    ),
    Case(
        "POST",
        "/api/storefront/stores/{slug}/orders",
        ANON,
        lambda ids: {**_ORDER, "items": [_line(ids, quantity=2**64)]},
        (422, "out_of_range"),
        _KEY,
    ),
    # rentals
    Case("GET", "/api/rentals/price-plans/{kind}/quote?days=0", STAFF, None, (422, "invalid_days")),
    Case("GET", "/api/rentals/price-plans/nokind/quote?days=3", STAFF, None, (422, "invalid_kind")),
    Case("PATCH", "/api/rentals/price-plans/nokind", STAFF, {"loan_days": 7}, (422, "invalid_kind")),
    Case("PATCH", "/api/rentals/customers/{customer_id}", STAFF, {"name": " "}, (422, "invalid_name")),
    Case(
        "PATCH", "/api/rentals/customers/{customer_id}", STAFF, {"status": "bogus"}, (422, "invalid_status")
    ),
    Case("PATCH", "/api/rentals/titles/{title_id}", STAFF, {"kind": "bogus"}, (422, "invalid_kind")),
    Case("PATCH", "/api/rentals/titles/{title_id}", STAFF, {"title": " "}, (422, "required")),
    Case(
        "POST",
        "/api/rentals/holds",
        STAFF,
        lambda ids: {"customer_id": _GONE, "title_id": ids["title_id"]},
        (404, "customer_not_found"),
    ),
    Case("POST", "/api/rentals/returns", STAFF, {"barcode": "NO-SUCH-COPY"}, (404, "copy_not_found")),
    Case(
        "POST",
        "/api/rentals/titles/{title_id}/copies",
        STAFF,
        {"barcodes": ["b" * 33]},
        (422, "invalid_barcode"),
    ),
    # trading
    Case("GET", "/api/trading/pokemon?level_min=0", ANON, None, (422, "invalid_level")),
    Case("GET", "/api/trading/pokemon?order=bogus", ANON, None, (422, "invalid_order")),
    Case("GET", "/api/trading/trainers?cursor=abc&offset=1", ANON, None, (422, "cursor_with_offset")),
    Case(
        "POST",
        "/api/trading/exchange",
        STAFF,
        {"trainer_a": "tA", "trainer_b": "tB", "a_gives": ["pk\x01"]},
        (422, "invalid_text"),
    ),
    # kvstore
    Case("DELETE", "/api/kv/keys/{key}?if_version=0", KV_A, None, (422, "invalid_if_version")),
    Case("GET", "/api/kv/keys?cursor=not-a-cursor", KV_A, None, (422, "invalid_cursor")),
    Case(
        "POST", "/api/kv/batch", KV_A, {"ops": [{"op": "set", "key": "", "value": 1}]}, (422, "invalid_key")
    ),
    Case(
        "POST",
        "/api/kv/batch",
        KV_A,
        {"ops": [{"op": "delete", "key": "a", "value": 1}]},
        (422, "invalid_op"),
    ),
    Case("POST", "/api/kv/keys/c/incr", KV_A, {"by": 1, "ttl": 0}, (422, "invalid_ttl")),
]


def _id(value: Any, ids: dict[str, Any]) -> Any:
    """``"{name}"`` is the world's id of that name; anything else is itself."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    return value


@pytest.mark.parametrize(
    "case", [*CASES, *FUZZED_CASES], ids=[f"{c.method} {c.path} {c.want[1]}" for c in [*CASES, *FUZZED_CASES]]
)
def test_app_codes_answered(case: Case, world: World) -> None:
    """The app codes no other test provokes through the API: each answered as declared, nothing written."""
    client = Client()
    with rolled_back():
        for before in case.before:
            method, path, who, *setup = before
            data = {k: _id(v, world.ids) for k, v in setup[0].items()} if setup else None
            r = getattr(client, method.lower())(
                path.format(**world.ids),
                json.dumps(data) if data is not None else "",
                content_type="application/json",
                **world.headers(who),
            )
            assert r.status_code < 300, (before, r.status_code, r.content[:200])
        ids = {**world.ids, **(case.setup(world) if case.setup else {})}
        after_setup = snapshot()
        body = case.body(ids) if callable(case.body) else case.body
        raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
        r = getattr(client, case.method.lower())(
            case.path.format(**ids),
            raw,
            content_type=case.content_type,
            **case.headers,
            **world.headers(case.who),
        )
        assert (r.status_code, code_of(r)) == case.want, r.content[:300]
        after = snapshot()
        assert [row for row in after if row[0] not in case.writes] == [
            row for row in after_setup if row[0] not in case.writes
        ]
        assert (after != after_setup) == bool(case.writes)


def test_a_path_value_that_does_not_fit_the_route_is_the_json_404(world: World) -> None:
    """The URL router answers before any operation: 404 ``not_found`` in the API's shape, declared for the
    operations whose route a value can miss (``bazaar.config.openapi.unfit_paths``). Recorded here by hand: no
    operation ran, so the recorder cannot name one."""
    from bazaar.config.openapi import unfit_paths

    client = Client()
    checked = 0
    for (method, path), unfit in unfit_paths().items():
        with rolled_back():
            r = getattr(client, method.lower())(unfit, **world.headers(STAFF))
        assert (r.status_code, code_of(r)) == (404, "not_found"), (method, path, unfit)
        assert answers.operation(method, unquote(unfit)) is None
        answers.OBSERVED.add((method, path, 404, "not_found"))
        checked += 1
    assert checked == sum("{" in path for path, ops in _document()["paths"].items() for _ in ops)


UPLOADS = [r for r in API if r.form in ("multipart", "ndjson")]


@pytest.mark.parametrize("row", UPLOADS, ids=[f"{r.method} {r.path}" for r in UPLOADS])
def test_an_upload_over_the_limit_is_413(row: Row, world: World, settings: Any) -> None:
    """Uploads (CSV imports, the KV import) have their own cap, ``MAX_UPLOAD_BYTES``: past it, 413
    ``payload_too_large`` before anything is read or written."""
    settings.MAX_UPLOAD_BYTES = 1000
    content_type = "text/csv" if row.form == "multipart" else "application/x-ndjson"
    with rolled_back():
        response = _call(row, world, _legit(row), b"x" * 2000, content_type)
        _refused(row, world, response, (413, "payload_too_large"))
