"""The public store page at 50, 500 and 5,000 products, and what a stream of orders costs its readers (issue 21).

* ``storefront_scale``: ``/s/bench-shop/`` at each size, cached (the fast path's stored bytes, the production
  server) and uncached (a second server with ``STOREFRONT_CACHE_ENABLED=false``: every request queries and
  renders), 16 clients, alternating round by round; req/s and p99 per size, the largest over the smallest.
  The page is paged (``storefront.selectors.PAGE_SIZE``), so a shopper's first page should cost the same at any
  size.
* ``storefront_orders_readers``: at the largest size, 16 readers of the cached store page, alternating rounds
  without and with a buyer placing 10 orders a second (one unit of a random product, stock 50–500 each, so now
  and then a product falls to "Only N left", which the page shows and must be rebuilt for). The readers' cost is
  ``1 - with / without`` round by round; the issue's goal is < 10 %.

Setup is not measured: the products ``Scale 000001..`` are inserted by one ``INSERT … SELECT generate_series`` per
size, cumulatively, into the benchmark shop (``bench.setup storefront-shop``, which also invalidates its page).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
import uuid
from typing import Any

from bench import harness
from bench.harness import Context, Scenario, Server, wrk

SIZES = (50, 500, 5_000)
CLIENTS = 16
ORDERS_PER_S = 10
SIDES = ("cached", "uncached")
ORDER = {"customer_name": "Bench Buyer", "phone": "+91 98765 43210", "address": "1 Loopback Road"}


def _fill(dsn: str, shop_id: int, upto: int) -> list[int]:
    """Products ``Scale 000001..upto`` in the shop (those missing); returns the ids of all of them."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(
            """INSERT INTO storefront_product
                   (shop_id, name, description, mrp, price, stock, is_available, is_listed, is_archived, category,
                    image, thumb_small, thumb, thumb_width, thumb_height, created_at, updated_at)
            SELECT %s, format('Scale %%s', lpad(i::text, 6, '0')), 'A product of the scale benchmark.',
                   120.00, 99.00, 50 + (i * 37) %% 451, true, true, false,
                   (ARRAY['Tea','Spices','Snacks','Pickles','Sweets'])[1 + i %% 5], '', '', '', 0, 0, now(), now()
            FROM generate_series(1, %s) AS i
            WHERE NOT EXISTS (SELECT 1 FROM storefront_product p
                              WHERE p.shop_id = %s AND p.name = format('Scale %%s', lpad(i::text, 6, '0')))""",
            [shop_id, upto, shop_id],
        )
        rows = conn.execute(
            "SELECT id FROM storefront_product WHERE shop_id = %s AND name LIKE 'Scale %%' ORDER BY id",
            [shop_id],
        ).fetchall()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) storefront_product")
    return [r[0] for r in rows]


def _shop(ctx: Context, dsn: str) -> tuple[str, int]:
    import psycopg

    ids = json.loads(ctx.setup("storefront-shop").strip().splitlines()[-1])
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT shop_id FROM storefront_product WHERE id = %s", [ids["bulk"]]).fetchone()
    assert row is not None
    return str(ids["slug"]), int(row[0])


def _reader(ctx: Context, url: str) -> Any:
    def run() -> dict[str, Any]:
        return wrk(url, duration=ctx.duration, connections=CLIENTS)

    return run


def storefront_scale(ctx: Context) -> dict[str, Any]:
    dsn = os.environ["DATABASE_URL"]
    sizes = [int(s) for s in os.environ.get("BENCH_STORE_SIZES", ",".join(map(str, SIZES))).split(",")]
    slug, shop_id = _shop(ctx, dsn)
    path = f"/s/{slug}/"
    uncached = Server(
        kind=ctx.server.kind, workers=ctx.server.workers, env={"STOREFRONT_CACHE_ENABLED": "false"}
    )
    uncached.start()
    results: dict[str, Any] = {}
    try:
        for n in sizes:
            # The two fixed products of the benchmark shop ("Bulk", "Race") are part of the count.
            _fill(dsn, shop_id, n - 2)
            _shop(ctx, dsn)  # invalidates the page: the rows were inserted behind the application's back
            pages: dict[str, int] = {}
            for side, base in (("cached", ctx.server.base), ("uncached", uncached.base)):
                status, body, _ = harness.fetch(base + path)
                if status != 200:
                    raise RuntimeError(f"{side} store page answered {status}")
                pages[side] = body.count(b"data-product=")
            medians, _rounds = harness.alternate(
                {
                    "cached": _reader(ctx, ctx.server.base + path),
                    "uncached": _reader(ctx, uncached.base + path),
                },
                ctx.rounds,
            )
            medians["cached"]["products_on_page"] = pages["cached"]
            medians["uncached"]["products_on_page"] = pages["uncached"]
            results[str(n)] = medians
            harness.report_size(n, "products", medians)
    finally:
        uncached.stop()
    title = "GET /s/<shop>/ (first page), 16 clients, by shop size"
    harness.plot_sizes(
        results, list(SIDES), xlabel="products in the shop", title=title, name="storefront_scale.png"
    )
    return harness.scale_result(
        results,
        sizes,
        clients=CLIENTS,
        target="the store page at the largest size within 2x of the smallest (ratio >= 0.5), cached and not",
        rounds=ctx.rounds,
    )


class _Buyer(threading.Thread):
    """Places ``ORDERS_PER_S`` orders a second (one unit of a random product) until stopped; counts answers."""

    def __init__(self, base: str, slug: str, product_ids: list[int]) -> None:
        super().__init__(daemon=True)
        self.url = f"{base}/api/storefront/stores/{slug}/orders"
        self.ids = product_ids
        self.stop = threading.Event()
        self.statuses: dict[int, int] = {}
        self.rng = random.Random(21)

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            product = self.rng.choice(self.ids)
            body = json.dumps({"items": [{"product_id": product, "quantity": 1}], **ORDER}).encode()
            status, _, _ = harness.fetch(
                self.url,
                method="POST",
                body=body,
                headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
            )
            self.statuses[status] = self.statuses.get(status, 0) + 1
            next_at += 1 / ORDERS_PER_S
            self.stop.wait(max(0.0, next_at - time.monotonic()))


def storefront_orders_readers(ctx: Context) -> dict[str, Any]:
    dsn = os.environ["DATABASE_URL"]
    n = int(os.environ.get("BENCH_STORE_SIZES", ",".join(map(str, SIZES))).split(",")[-1])
    slug, shop_id = _shop(ctx, dsn)
    ids = _fill(dsn, shop_id, n - 2)
    _shop(ctx, dsn)
    url = ctx.server.base + f"/s/{slug}/"
    buyers: list[_Buyer] = []

    def with_orders() -> dict[str, Any]:
        buyer = _Buyer(ctx.server.base, slug, ids)
        buyers.append(buyer)
        buyer.start()
        try:
            return wrk(url, duration=ctx.duration, connections=CLIENTS)
        finally:
            buyer.stop.set()
            buyer.join(30)

    medians, per_round = harness.alternate(
        {"without_orders": _reader(ctx, url), "with_orders": with_orders}, ctx.rounds
    )
    costs = [1 - r["with_orders"] / r["without_orders"] for r in per_round if r.get("without_orders")]
    statuses: dict[str, int] = {}
    for buyer in buyers:
        for status, count in buyer.statuses.items():
            statuses[str(status)] = statuses.get(str(status), 0) + count
    placed = statuses.get("201", 0)
    cost = round(float(statistics.median(costs)), 4) if costs else None
    return {
        "products": n,
        "app": medians["with_orders"],  # the headline: what readers get while orders come in
        "bars": {
            "readers, no orders": medians["without_orders"]["rps"],
            f"readers, {ORDERS_PER_S} orders/s": medians["with_orders"]["rps"],
        },
        "readers": medians,
        "orders": {
            "target_per_s": ORDERS_PER_S,
            "placed_per_s": round(placed / (ctx.duration * len(buyers)), 2) if buyers else 0,
            "statuses": statuses,
        },
        "readers_cost": {"median": cost, "rounds": [round(c, 4) for c in costs]},
        "target": "10 orders/s on a 5,000-product shop cost its readers < 10 %",
        "meets_target": cost is not None and cost < 0.10 and placed > 0,
        "rounds": ctx.rounds,
    }


SCENARIOS = [
    Scenario(
        "storefront_scale",
        "public store page (first page) at 50/500/5,000 products, cached and uncached",
        storefront_scale,
        needs=("postgres", "redis"),
        app="storefront",
        rounds="own",
    ),
    Scenario(
        "storefront_orders_readers",
        "readers of a 5,000-product store page without and with 10 orders/s (alternating rounds)",
        storefront_orders_readers,
        needs=("postgres", "redis"),
        app="storefront",
        rounds="own",
    ),
]
