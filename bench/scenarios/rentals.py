"""Rentals scenarios: the cached public title list against nginx, and the rent + return cycle under 32 clerks.

The cycle scenario drives the real server's API with a staff token from 32 client threads (one keep-alive
connection each, 127.0.0.1 only, bounded by the duration), then checks the database: no copy in two open
rentals, and every return the clients saw acknowledged is stored with its charge (no lost charges).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from decimal import Decimal
from typing import Any

from bench.harness import Context, Scenario, compare_with_nginx, wrk

CLIENTS = 32
CYCLES_PER_CUSTOMER = 5  # 5 x 2.00 stays within the default 20.00 balance limit


def title_list(ctx: Context) -> dict[str, Any]:
    """The public JSON title list (default page: 50 titles with availability), cached bytes via the fast path."""
    return compare_with_nginx(ctx, "rentals_title_list", "/api/rentals/titles")


def catalogue_page(ctx: Context) -> dict[str, Any]:
    """The public HTML catalogue page (all titles with availability), cached bytes via the fast path."""
    return compare_with_nginx(ctx, "rentals_catalogue_page", "/rentals/")


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p))], 2)


def rent_return_cycle(ctx: Context) -> dict[str, Any]:
    setup = json.loads(
        ctx.manage("rentals", "bench-setup", "--customers", "4000", "--titles", "8", "--copies", "16")
    )
    token = ctx.manage("token", "create", "desk", "--name", "bench").strip()
    before = json.loads(ctx.manage("rentals", "bench-check"))
    customers: list[int] = setup["customers"]
    titles: list[int] = setup["titles"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    deadline = time.monotonic() + ctx.duration
    lock = threading.Lock()
    cycle_ms: list[float] = []
    charges: list[Decimal] = []
    errors: dict[str, int] = {}
    barrier = threading.Barrier(CLIENTS)

    def call(
        conn: http.client.HTTPConnection, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[int, Any]:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ctx.server.port, timeout=30)
        mine = customers[i::CLIENTS]
        title = titles[i % len(titles)]
        n = 0
        local_ms: list[float] = []
        local_charges: list[Decimal] = []
        local_errors: dict[str, int] = {}
        barrier.wait()
        while time.monotonic() < deadline and n // CYCLES_PER_CUSTOMER < len(mine):
            customer = mine[n // CYCLES_PER_CUSTOMER]
            start = time.perf_counter()
            try:
                status, rental = call(
                    conn, "POST", "/api/rentals/rentals", {"customer_id": customer, "title_id": title}
                )
                if status != 201:
                    key = f"rent {status} {rental.get('code') if isinstance(rental, dict) else ''}"
                    local_errors[key] = local_errors.get(key, 0) + 1
                    n += 1
                    continue
                status, closed = call(conn, "POST", f"/api/rentals/rentals/{rental['id']}/return", None)
                if status != 200:
                    key = f"return {status}"
                    local_errors[key] = local_errors.get(key, 0) + 1
                else:
                    local_charges.append(Decimal(closed["charge"]))
                    local_ms.append((time.perf_counter() - start) * 1000)
            except (OSError, http.client.HTTPException) as exc:
                key = f"io {type(exc).__name__}"
                local_errors[key] = local_errors.get(key, 0) + 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", ctx.server.port, timeout=30)
            n += 1
        conn.close()
        with lock:
            cycle_ms.extend(local_ms)
            charges.extend(local_charges)
            for k, v in local_errors.items():
                errors[k] = errors.get(k, 0) + v

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(ctx.duration + 120)
    elapsed = time.monotonic() - started
    after = json.loads(ctx.manage("rentals", "bench-check"))
    # Context for the number: the same server answering the cheapest staff-authenticated API read (token check
    # + one small query). A cycle is two writes, so cycles/s can never exceed half of this.
    floor = wrk(
        ctx.server.base + "/api/rentals/price-plans",
        duration=max(3, ctx.duration // 2),
        connections=CLIENTS,
        headers={"Authorization": f"Bearer {token}"},
    )
    floor.pop("raw", None)
    cycles = len(cycle_ms)
    stored_closed = after["closed"] - before["closed"]
    stored_charges = Decimal(after["charges_total"]) - Decimal(before["charges_total"])
    seen_charges = sum(charges, Decimal("0.00"))
    lost = (cycles - stored_closed) + after["closed_without_charge"]
    rate = round(cycles / elapsed, 1) if elapsed else 0.0
    return {
        "unit": "rent+return cycles/s",
        "app": {
            "rps": rate,
            "requests": cycles * 2,
            "p50_ms": _pct(cycle_ms, 0.50),
            "p90_ms": _pct(cycle_ms, 0.90),
            "p99_ms": _pct(cycle_ms, 0.99),
        },
        "cycles": cycles,
        "http_requests_per_s": round(2 * cycles / elapsed, 1) if elapsed else 0.0,
        "clients": CLIENTS,
        "load_s": round(elapsed, 2),
        "double_rentals": after["double_rentals"],
        "lost_charges": lost,
        "charges_seen_by_clients": str(seen_charges),
        "charges_stored": str(stored_charges),
        "charges_match": seen_charges == stored_charges,
        "open_after": after["open"],
        "rented_copies_without_open_rental": after["rented_copies_without_open_rental"],
        "open_rentals_on_free_copies": after["open_rentals_on_free_copies"],
        "errors": errors,
        "target_cycles_per_s": 300,
        "staff_get_floor": floor,
        "cycle_ceiling_from_floor": round(floor["rps"] / 2, 1),
    }


SCENARIOS = [
    Scenario(
        "rentals_title_list",
        "public JSON title list (50 titles, cached bytes) vs nginx",
        title_list,
        app="rentals",
    ),
    Scenario(
        "rentals_catalogue_page",
        "public HTML catalogue page (cached bytes) vs nginx",
        catalogue_page,
        app="rentals",
    ),
    Scenario(
        "rentals_rent_return_cycle",
        "rent + return cycles/s, 32 concurrent staff clients, PostgreSQL",
        rent_return_cycle,
        needs=("postgres", "redis"),
        app="rentals",
    ),
]
