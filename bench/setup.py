"""Fixtures for the benchmarks, kept out of the product's CLI: ``python -m bench.setup <action>``.

The bench scripts call it through ``harness.setup`` (``Context.setup``) with the bench environment, so it runs
against the same database and cache as the server under load. Each action prints its result as the last line of
stdout (JSON, except ``trading-purge-prefix``); progress goes to stderr.

* ``storefront-shop [--race-stock N] [--bulk-stock N]``: create or reset the benchmark shop ``bench-shop``.
* ``storefront-photos [--slug SLUG]``: a photo on every product of the shop (default the demo shop) that has none,
  through the vendor's update service (the upload path: checked, thumbnails made, the store page invalidated).
* ``trading-setup [--trainers N] [--pokemon N]``: trainers bx0001.., pokemon bxp00001.. and a staff token.
* ``trading-purge-prefix PREFIX``: delete pokemon (and their history) whose id starts with PREFIX.
* ``rentals-setup [--customers N] [--titles N] [--copies N]``: customers, titles and copies; balances settled.
* ``rentals-check``: the invariants the rent/return benchmark checks before and after its load.

Django models are imported inside the functions: this module is imported by tests (already set up) and run as a
script (set up in ``main``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from decimal import Decimal
from typing import Any

BENCH_SLUG = "bench-shop"
RENTALS_CUSTOMER = "Bench customer "
RENTALS_TITLE = "Bench title "


def storefront_shop(*, race_stock: int = 100, bulk_stock: int = 10_000_000) -> dict[str, int | str]:
    """Create or reset the benchmark shop (in one transaction): no orders, product "Race" with ``race_stock`` and
    "Bulk" with ``bulk_stock`` units. Returns the slug and the two product ids."""
    from django.db import transaction

    from bazaar.accounts.models import User
    from bazaar.storefront.cache import invalidate_store
    from bazaar.storefront.models import Order, Product, Shop

    with transaction.atomic():
        user = User.objects.filter(username="bench-vendor").first()
        if user is None:
            user = User(username="bench-vendor", email="bench@bazaar.local")
            user.set_unusable_password()
            user.save()
        shop = Shop.objects.filter(slug=BENCH_SLUG).first() or Shop.objects.create(
            owner=user, name="Bench Shop", slug=BENCH_SLUG, contact_email=user.email
        )
        Order.objects.filter(shop=shop).delete()
        ids: dict[str, int | str] = {"slug": shop.slug}
        for name, stock in (("Race", race_stock), ("Bulk", bulk_stock)):
            product, _ = Product.objects.update_or_create(
                shop=shop,
                name=name,
                is_archived=False,
                defaults={
                    "mrp": Decimal("10.00"),
                    "price": Decimal("9.00"),
                    "stock": stock,
                    "is_available": True,
                    "is_listed": True,
                },
            )
            ids[name.lower()] = product.pk
        invalidate_store(shop.slug)
    return ids


def storefront_photos(*, slug: str = "demo-shop") -> dict[str, int]:
    """A generated 800x600 JPEG on each product of ``slug`` without a photo, uploaded through
    ``product_update`` as a vendor's form would. Returns how many got one and how many had one."""
    import colorsys
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image, ImageDraw

    from bazaar.storefront.models import Product
    from bazaar.storefront.services import products

    added = kept = 0
    for product in Product.objects.select_related("shop__owner").filter(shop__slug=slug, is_archived=False):
        if product.image:
            kept += 1
            continue
        hue = (product.pk * 0.618034) % 1.0
        rgb = tuple(int(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.45, 0.85))
        img = Image.new("RGB", (800, 600), rgb)
        draw = ImageDraw.Draw(img)
        for i in range(0, 800, 40):  # some texture, so the JPEG is photo-sized rather than a flat colour
            draw.line([(i, 0), (800 - i, 600)], fill=tuple(255 - c for c in rgb), width=3)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        upload = SimpleUploadedFile(f"product-{product.pk}.jpg", buf.getvalue(), content_type="image/jpeg")
        products.product_update(owner=product.shop.owner, product_id=product.pk, image=upload)
        added += 1
    return {"added": added, "had_one": kept}


def trading_setup(*, trainers: int = 8, pokemon: int = 200) -> dict[str, Any]:
    """Idempotent fixtures for the exchange benchmark: trainers bx0001.., pokemon bxp00001.. dealt round-robin,
    and a staff user with a fresh token. Returns the token, the trainer ids and the current owner of each pokemon."""
    from django.db import transaction

    from bazaar.accounts.models import User
    from bazaar.accounts.services import token_create
    from bazaar.trading import services
    from bazaar.trading.demo import SPECIES
    from bazaar.trading.models import Pokemon, Trainer

    with transaction.atomic():
        staff = User.objects.filter(username="bench-trading").first()
        if staff is None:
            staff = User(username="bench-trading", email="bench-trading@example.com", is_staff=True)
            staff.set_unusable_password()
            staff.save()
        for i in range(1, trainers + 1):
            if not Trainer.objects.filter(public_id=f"bx{i:04d}").exists():
                services.trainer_create(
                    public_id=f"bx{i:04d}",
                    first_name="Bench",
                    last_name=f"T{i}",
                    date_of_birth=dt.date(2000, 1, 1),
                )
        for i in range(1, pokemon + 1):
            if not Pokemon.objects.filter(public_id=f"bxp{i:05d}").exists():
                services.pokemon_create(
                    public_id=f"bxp{i:05d}",
                    nickname=f"b{i}",
                    species=SPECIES[i % len(SPECIES)],
                    level=1 + i % 100,
                    owner=f"bx{1 + (i - 1) % trainers:04d}",
                )
        token = token_create(user=staff, name="bench").secret
    return {
        "token": token,
        "trainers": [f"bx{i:04d}" for i in range(1, trainers + 1)],
        "owners": dict(
            Pokemon.objects.filter(public_id__startswith="bxp").values_list("public_id", "owner__public_id")
        ),
    }


def trading_purge_prefix(prefix: str) -> int:
    """Remove bench leftovers (pokemon with ids starting ``prefix``) set-wise: a million rows through the ORM's
    Python-side cascade would take minutes. Offers touching them become invalid first. Raw deletes send no
    signals, so the cached trading surfaces are told through ``freshness.changed``."""
    from django.db import connection, transaction

    from bazaar.core import db, freshness
    from bazaar.trading.models import Pokemon
    from bazaar.trading.services.common import check_public_id

    check_public_id(prefix, "prefix")
    args: list[int | str] = [len(prefix), prefix]
    # A million deletes, and their COMMIT (a deferred foreign key check per deleted pokemon), outlive the client
    # deadline of an ordinary round trip: no client deadline here, the server's bulk statement timeout.
    with db.deadline(0), transaction.atomic(), db.long_statements(), connection.cursor() as cur:
        cur.execute(
            "UPDATE trading_tradeoffer SET state = 'invalid', reason = 'pokemon deleted', decided_at = CURRENT_TIMESTAMP "
            "WHERE state = 'open' AND id IN (SELECT offer_id FROM trading_offeritem WHERE pokemon_id IN "
            "(SELECT id FROM trading_pokemon WHERE SUBSTR(public_id, 1, %s) = %s))",
            args,
        )
        cur.execute(
            "DELETE FROM trading_offeritem WHERE pokemon_id IN "
            "(SELECT id FROM trading_pokemon WHERE SUBSTR(public_id, 1, %s) = %s)",
            args,
        )
        cur.execute(
            "DELETE FROM trading_ownershipchange WHERE pokemon_id IN "
            "(SELECT id FROM trading_pokemon WHERE SUBSTR(public_id, 1, %s) = %s)",
            args,
        )
        cur.execute("DELETE FROM trading_pokemon WHERE SUBSTR(public_id, 1, %s) = %s", args)
        deleted = int(cur.rowcount)
        freshness.changed(Pokemon)
    return deleted


def rentals_setup(*, customers: int = 4000, titles: int = 8, copies: int = 16) -> dict[str, list[int]]:
    """Benchmark customers, titles and copies (idempotent); open bench rentals are returned and balances paid, so
    limits do not bite a second run. Returns the customer and title ids."""
    from django.db import transaction
    from django.utils import timezone
    from tqdm import tqdm

    from bazaar.rentals import selectors, services
    from bazaar.rentals.models import Copy, Customer, Kind, Payment, Rental, Title

    with transaction.atomic():
        have = Customer.objects.filter(name__startswith=RENTALS_CUSTOMER).count()
        Customer.objects.bulk_create(
            [Customer(name=f"{RENTALS_CUSTOMER}{i:05d}") for i in range(have, customers)], batch_size=1000
        )
        for i in tqdm(range(titles), desc="titles", file=sys.stderr):
            title, _ = Title.objects.get_or_create(
                title=f"{RENTALS_TITLE}{i:02d}", author="Bench", defaults={"kind": Kind.REGULAR}
            )
            missing = copies - Copy.objects.filter(title=title).count()
            if missing > 0:
                services.copies_add(title_id=title.pk, count=missing)
    # Earlier runs left balances (and maybe open rentals after a crash): settle them so limits don't bite.
    for rental_id in Rental.objects.filter(
        title__title__startswith=RENTALS_TITLE, returned_at__isnull=True
    ).values_list("pk", flat=True):
        services.rental_return(rental_id=rental_id)
    owing = []
    for cid in (
        Customer.objects.filter(name__startswith=RENTALS_CUSTOMER).values_list("pk", flat=True).iterator()
    ):
        balance = selectors.customer_standing(customer_id=cid).balance
        if balance > 0:
            owing.append(Payment(customer_id=cid, amount=balance, note="bench", received_at=timezone.now()))
    Payment.objects.bulk_create(owing, batch_size=1000)
    return {
        "customers": list(
            Customer.objects.filter(name__startswith=RENTALS_CUSTOMER)
            .order_by("id")
            .values_list("id", flat=True)
        ),
        "titles": list(
            Title.objects.filter(title__startswith=RENTALS_TITLE).order_by("id").values_list("id", flat=True)
        ),
    }


def rentals_check() -> dict[str, Any]:
    """The invariants the rent/return benchmark compares before and after its load: no copy rented twice, every
    closed bench rental charged, copy states agreeing with open rentals."""
    from django.db.models import Count, Q, Sum

    from bazaar.rentals.models import Copy, CopyState, Rental

    bench = Rental.objects.filter(title__title__startswith=RENTALS_TITLE)
    doubles = (
        Rental.objects.filter(returned_at__isnull=True)
        .values("copy_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    agg = bench.filter(returned_at__isnull=False).aggregate(
        n=Count("id"), total=Sum("charge"), missing=Count("id", filter=Q(charge__isnull=True))
    )
    rented_without_rental = (
        Copy.objects.filter(state=CopyState.RENTED).exclude(rentals__returned_at__isnull=True).count()
    )
    open_on_free_copy = (
        Rental.objects.filter(returned_at__isnull=True).exclude(copy__state=CopyState.RENTED).count()
    )
    return {
        "double_rentals": doubles,
        "closed": agg["n"],
        "charges_total": str(agg["total"] or Decimal("0.00")),
        "closed_without_charge": agg["missing"],
        "open": bench.filter(returned_at__isnull=True).count(),
        "rented_copies_without_open_rental": rented_without_rental,
        "open_rentals_on_free_copies": open_on_free_copy,
    }


def run(argv: list[str]) -> str:
    """One action, its result as the text to print (Django already set up)."""
    parser = argparse.ArgumentParser(prog="python -m bench.setup", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    shop = sub.add_parser("storefront-shop", help="create or reset the benchmark shop; prints JSON")
    shop.add_argument("--race-stock", type=int, default=100)
    shop.add_argument("--bulk-stock", type=int, default=10_000_000)
    photos = sub.add_parser("storefront-photos", help="a photo on every product of a shop; prints JSON")
    photos.add_argument("--slug", default="demo-shop")
    trading = sub.add_parser("trading-setup", help="trainers, pokemon and a staff token; prints JSON")
    trading.add_argument("--trainers", type=int, default=8)
    trading.add_argument("--pokemon", type=int, default=200)
    purge = sub.add_parser("trading-purge-prefix", help="delete pokemon whose id starts with PREFIX")
    purge.add_argument("prefix")
    rentals = sub.add_parser("rentals-setup", help="customers, titles and copies; prints JSON")
    rentals.add_argument("--customers", type=int, default=4000)
    rentals.add_argument("--titles", type=int, default=8)
    rentals.add_argument("--copies", type=int, default=16)
    sub.add_parser("rentals-check", help="the rent/return invariants; prints JSON")
    o = parser.parse_args(argv)
    if o.action == "storefront-shop":
        return json.dumps(storefront_shop(race_stock=o.race_stock, bulk_stock=o.bulk_stock))
    if o.action == "storefront-photos":
        return json.dumps(storefront_photos(slug=o.slug))
    if o.action == "trading-setup":
        return json.dumps(trading_setup(trainers=o.trainers, pokemon=o.pokemon))
    if o.action == "trading-purge-prefix":
        return f"deleted {trading_purge_prefix(o.prefix)} pokemon"
    if o.action == "rentals-setup":
        return json.dumps(rentals_setup(customers=o.customers, titles=o.titles, copies=o.copies))
    return json.dumps(rentals_check())


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bazaar.config.settings.base")
    import django

    django.setup()
    print(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
