"""A small world with two of everything, for the access matrix and the abuse tests.

Principals: vendor A and B (each with a shop, a product and an order), trainer A and B (users linked to trainers
``tA``/``tB``, two pokemon each, an open offer from A to B), kv tenant A and B (an API key and an entry each),
tenant A's console members (a viewer, an editor and an admin: users with no shop and no trainer), a staff user
(no shop, no trainer), and anonymous. Everything vendor A and tenant A own carries the marker
``ALPHA`` so a response that leaks it to someone else is easy to spot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import transaction
from django.db.models import Model, Q

from bazaar.accounts.models import ApiToken, User
from bazaar.accounts.services import token_create
from bazaar.core import cache

PASSWORD = "correct-horse-battery"
MARKER = b"ALPHA"

VENDOR_A, VENDOR_B = "vendor_a", "vendor_b"
TRAINER_A, TRAINER_B = "trainer_a", "trainer_b"
KV_A, KV_B = "kv_a", "kv_b"
#: Users who are members of tenant A (the KV console), each with the role of the same name.
KV_VIEWER, KV_EDITOR, KV_ADMIN = "kv_viewer", "kv_editor", "kv_admin"
KV_MEMBERS = {KV_VIEWER: "viewer", KV_EDITOR: "editor", KV_ADMIN: "admin"}
STAFF, ANON = "staff", "anon"
USERS = (VENDOR_A, VENDOR_B, TRAINER_A, TRAINER_B, KV_VIEWER, KV_EDITOR, KV_ADMIN, STAFF)
KEYS = (KV_A, KV_B)
PRINCIPALS = (*USERS, *KEYS, ANON)

#: Columns that change on a read (bookkeeping, not data): ignored when comparing snapshots.
VOLATILE = {"last_used_at", "last_login"}
#: The cache's own bookkeeping (core.CacheLedger: which Redis run was last settled), written by whichever process
#: first connects to Redis, whatever the request: not data a request writes.
NOT_DATA = {"core.CacheLedger"}


@dataclass
class World:
    users: dict[str, User]
    secrets: dict[str, str]  # principal -> bearer secret (user token or kv key)
    ids: dict[str, Any]  # path parameter -> value naming an object of A (or a shared one)
    missing: dict[str, Any] = field(default_factory=dict)  # path parameter -> value naming nothing
    #: The database as built; every call runs in a rolled-back savepoint, so it is also the state before each.
    baseline: list[tuple[str, str]] = field(default_factory=list)
    sessions: dict[str, str] = field(default_factory=dict)  # user principal -> session key, for pages

    def headers(self, principal: str) -> dict[str, str]:
        secret = self.secrets.get(principal)
        return {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}


def build_world(make_user: Any, media_root: Path) -> World:
    """Create the world through the services (as the apps would), and return its principals and ids."""
    from bazaar.kvstore import services as kv
    from bazaar.rentals import services as rentals
    from bazaar.rentals.models import ExportJob, ExportStatus
    from bazaar.storefront import services as store
    from bazaar.storefront.models import Product, Shop
    from bazaar.trading import services as trading
    from bazaar.trading.models import ImportJob, ImportPreview

    users = {name: make_user(name, is_staff=(name == STAFF)) for name in USERS}
    secrets = {name: token_create(user=user, name="matrix").secret for name, user in users.items()}
    ids: dict[str, Any] = {}

    # storefront: a shop, a product and an order per vendor
    for who, name, slug in ((VENDOR_A, "ALPHA Spices", "alpha-spices"), (VENDOR_B, "Bravo Tea", "bravo-tea")):
        shop = Shop.objects.create(owner=users[who], name=name, slug=slug, contact_email=f"{who}@example.com")
        label = "ALPHA saffron" if who == VENDOR_A else "Bravo chai"
        product = Product.objects.create(
            shop=shop, name=label, price=Decimal("90.00"), mrp=Decimal("100.00"), stock=10
        )
        placed = store.order_place(
            slug=slug,
            lines=[store.OrderLine(product.pk, 1, None)],
            customer_name="ALPHA customer" if who == VENDOR_A else "Bravo customer",
            phone="+91 98765 43210",
            address="ALPHA street 1" if who == VENDOR_A else "Bravo street 2",
            idempotency_key=f"matrix-{who}",
        )
        if who == VENDOR_A:
            ids.update(slug=slug, product_id=product.pk, order_id=placed.order.pk, number=placed.order.number)
    ids["token_id"] = token_create(user=users[VENDOR_A], name="ALPHA laptop").token.pk

    # trading: trainers linked to the trainer users, two pokemon each, an open offer A -> B, an import job
    born = dt.date(1990, 1, 1)
    for who, tid, first in ((TRAINER_A, "tA", "Ash"), (TRAINER_B, "tB", "Misty")):
        trading.trainer_create(
            public_id=tid, first_name=first, last_name="T", date_of_birth=born, username=users[who].username
        )
        for n in (1, 2):
            trading.pokemon_create(
                public_id=f"pk{tid[1]}{n}", nickname=f"{first}{n}", species="Pikachu", level=10, owner=tid
            )
    trading.trainer_create(public_id="tC", first_name="Brock", last_name="T", date_of_birth=born)
    offer = trading.offer_create(
        proposer="tA", receiver="tB", give=["pkA1"], ask=["pkB1"], actor=users[TRAINER_A]
    )
    job = ImportJob.objects.create(kind="trainers", path="imports/none.csv", created_by=users[STAFF])
    preview = ImportPreview.objects.create(
        kind="trainers",
        state="ready",
        filename="t.csv",
        path="imports/none.csv",
        size=10,
        created_by=users[STAFF],
    )
    ids.update(trainer_id="tC", pokemon_id="pkA2", offer_id=offer.pk, job_id=job.pk, preview_id=preview.pk)

    # rentals: a title with copies, two customers, an open rental, a hold, a finished export
    title = rentals.title_create(title="Koko's Tale", author="K. Author", copies=3)
    reader = rentals.customer_create(name="Reader One", email="one@example.com")
    waiting = rentals.customer_create(name="Reader Two", email="two@example.com")
    rental = rentals.rental_rent(customer_id=reader.pk, title_id=title.pk, by=users[STAFF])
    hold = rentals.hold_place(customer_id=waiting.pk, title_id=title.pk)
    payment = rentals.payment_record(customer_id=reader.pk, amount="1.00")
    # Patrons who sign in to their own account: trainer A holds the rental's card, trainer B the hold's.
    rentals.customer_link_user(customer_id=reader.pk, user=users[TRAINER_A])
    rentals.customer_link_user(customer_id=waiting.pk, user=users[TRAINER_B])
    free_copy = title.copies.exclude(pk=rental.copy_id).order_by("pk").first()
    assert free_copy is not None
    (media_root / "exports").mkdir(parents=True, exist_ok=True)
    (media_root / "exports" / "matrix.csv").write_text("rental_id\n")
    export = ExportJob.objects.create(status=ExportStatus.DONE, file="exports/matrix.csv", total=1, done=1)
    ids.update(
        title_id=title.pk,
        copy_id=free_copy.pk,
        customer_id=reader.pk,
        other_customer_id=waiting.pk,
        rental_id=rental.pk,
        barcode=rental.copy.barcode,
        hold_id=hold.pk,
        payment_id=payment.pk,
        kind="regular",
        export_id=export.pk,
    )

    # kvstore: a tenant, a key and an entry per tenant
    for who, slug, key, value in (
        (KV_A, "alpha", "shared-key", "ALPHA secret"),
        (KV_B, "bravo", "b-key", "b"),
    ):
        tenant = kv.tenant_create(slug=slug)
        issued = kv.apikey_create(tenant_id=tenant.pk, name="matrix")
        secrets[who] = issued.secret
        kv.entry_set(tenant_id=tenant.pk, key=key, value=value)
        if who == KV_A:
            ids.update(key=key, tenant_slug=slug, key_id=issued.key.pk)
            for member, role in KV_MEMBERS.items():
                added = kv.member_add(tenant_id=tenant.pk, who=member, role=role, actor=users[STAFF])
                if member == KV_VIEWER:
                    ids["member_id"] = added.pk

    missing = {
        "slug": "no-such-shop",
        "number": "BZ-NOPE",
        "product_id": 987654,
        "order_id": 987654,
        "token_id": 987654,
        "trainer_id": "tZZ",
        "pokemon_id": "pkZZ",
        "offer_id": 987654,
        "job_id": 987654,
        "preview_id": 987654,
        "title_id": 987654,
        "copy_id": 987654,
        "customer_id": 987654,
        "rental_id": 987654,
        "hold_id": 987654,
        "payment_id": 987654,
        "other_customer_id": 987654,
        "kind": "nokind",
        "export_id": 987654,
        "key": "no-such-key",
        "tenant_slug": "no-such-tenant",
        "key_id": 987654,
        "member_id": 987654,
    }
    return World(users=users, secrets=secrets, ids=ids, missing=missing, baseline=snapshot())


@pytest.fixture(name="world")
def world_fixture(make_user: Any, settings: Any, tmp_path: Path) -> World:
    """The world, with MEDIA_ROOT in the test's own directory (exports, images, imports)."""
    settings.MEDIA_ROOT = tmp_path
    return build_world(make_user, tmp_path)


def _rows(model: type[Model], where: Q | None = None) -> list[tuple[Any, ...]]:
    names = [f.attname for f in model._meta.concrete_fields if f.name not in VOLATILE]
    qs = model._default_manager.all() if where is None else model._default_manager.filter(where)
    return sorted(tuple(map(repr, row)) for row in qs.order_by().values_list(*names))


def _snapshot_sql() -> str:
    """One UNION ALL over every Bazaar table, each row flattened to text: one round trip, on SQLite and PostgreSQL."""
    from django.db import connection

    q = connection.ops.quote_name
    parts = []
    for model in apps.get_models():
        if not model.__module__.startswith("bazaar.") or model._meta.label in NOT_DATA:
            continue
        cols = [f.column for f in model._meta.concrete_fields if f.name not in VOLATILE]
        row = " || '|' || ".join(f"COALESCE(CAST({q(c)} AS TEXT), '-')" for c in cols)
        parts.append(f"SELECT '{model._meta.label}', {row} FROM {q(model._meta.db_table)}")
    return " UNION ALL ".join(parts)


def snapshot() -> list[tuple[str, str]]:
    """Every row of every Bazaar model (minus bookkeeping columns): a refused request must not change it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_snapshot_sql())
        return sorted(cursor.fetchall())


def victim_snapshot(world: World) -> dict[str, list[tuple[Any, ...]]]:
    """The rows that belong to vendor A, trainer A and tenant A: nobody else's call may change them."""
    from bazaar.kvstore.models import Entry, Tenant, TenantApiKey, TenantMember
    from bazaar.storefront.models import Order, OrderIdempotencyKey, OrderItem, Product, Shop, ShopSlugHistory
    from bazaar.trading.models import OfferItem, OwnershipChange, Pokemon, TradeOffer, Trainer

    vendor = world.users[VENDOR_A]
    return {
        "user": _rows(User, Q(pk=vendor.pk)),
        "tokens": _rows(ApiToken, Q(user=vendor)),
        "shop": _rows(Shop, Q(owner=vendor)),
        "slugs": _rows(ShopSlugHistory, Q(shop__owner=vendor)),
        "products": _rows(Product, Q(shop__owner=vendor)),
        "orders": _rows(Order, Q(shop__owner=vendor)),
        "items": _rows(OrderItem, Q(order__shop__owner=vendor)),
        "idem": _rows(OrderIdempotencyKey, Q(shop__owner=vendor)),
        "trainer": _rows(Trainer, Q(public_id="tA")),
        "pokemon": _rows(Pokemon, Q(owner__public_id="tA")),
        "history": _rows(OwnershipChange, Q(pokemon__owner__public_id="tA")),
        "offers": _rows(TradeOffer, Q(proposer__public_id="tA") | Q(receiver__public_id="tA")),
        "offer_items": _rows(OfferItem, Q(offer__proposer__public_id="tA")),
        "tenant": _rows(Tenant, Q(slug="alpha")),
        "kv_keys": _rows(TenantApiKey, Q(tenant__slug="alpha")),
        "entries": _rows(Entry, Q(tenant__slug="alpha")),
        "members": _rows(TenantMember, Q(tenant__slug="alpha")),
    }


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run one call in a savepoint that is rolled back, with a cache namespace of its own.

    Every principal then meets the same untouched world, whatever the previous one changed.
    """
    cache.set_prefix(cache.new_test_prefix())
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def body_of(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def code_of(response: Any) -> str | None:
    if not response.get("Content-Type", "").startswith("application/json"):
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    return data.get("code") if isinstance(data, dict) else None
