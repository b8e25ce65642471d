"""Trading lists at 100, 100k and 1M pokemon: the cost of a page must depend on the page, not on the table.

The lists are served uncached here (a second server with ``CACHE_BYPASS_SURFACES`` naming the trading JSON surfaces):
every request builds its page from PostgreSQL, which is what a reader meets after each exchange, offer or import
invalidates the POKEMON scope. Four kinds of request, 16 clients, alternating round by round:

- ``first_page``: ``/api/trading/pokemon?limit=50``;
- ``cursor_random``: a page after a uniformly random pokemon (``cursor`` built like ``next_cursor``), i.e. a
  random-depth page of the keyset walk;
- ``offset_random``: ``offset`` uniform within the window the API allows (≤ 10,000);
- ``owner_random``: the pokemon of a random trainer.

Setup is not measured: trainers ``ts0001..ts1000`` and pokemon ``ts0000000..`` are inserted by one ``INSERT … SELECT
generate_series`` per size, cumulatively.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

from bazaar.core.cursors import encode_keyset
from bench.harness import (
    Context,
    Scenario,
    Server,
    alternate,
    fetch,
    plot_sizes,
    report_size,
    scale_result,
    wrk,
)

SIZES = (100, 100_000, 1_000_000)
TRAINERS = 1_000
CLIENTS = 16
PATHS_PER_KIND = 4_000
BYPASS = "trading.pokemon_json,trading.trainers_json"


def _fill(dsn: str, upto: int) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(
            """INSERT INTO trading_trainer (public_id, first_name, last_name, date_of_birth, created_at, updated_at)
            SELECT format('ts%%s', lpad(i::text, 4, '0')), 'Scale', format('Trainer%%s', i),
                   date '1970-01-01' + (i %% 9000), now(), now()
            FROM generate_series(1, %s) AS i
            ON CONFLICT DO NOTHING""",
            [TRAINERS],
        )
        conn.execute(
            """INSERT INTO trading_pokemon
                   (public_id, nickname, species, level, owner_id, date_of_ownership, created_at, updated_at)
            SELECT format('ts%%s', lpad(i::text, 7, '0')), format('nick%%s', i),
                   (ARRAY['Pikachu','Eevee','Onix','Snorlax','Gengar','Psyduck','Abra','Magikarp'])[1 + i %% 8],
                   1 + i %% 100, t.id, date '2000-01-01' + (i %% 8000), now(), now()
            FROM generate_series(0, %s - 1) AS i
            JOIN trading_trainer t ON t.public_id = format('ts%%s', lpad((1 + i %% %s)::text, 4, '0'))
            ON CONFLICT DO NOTHING""",
            [upto, TRAINERS],
        )
        conn.execute("ANALYZE trading_trainer")
    # What autovacuum does to a table after a bulk load: statistics and the visibility map, so counts of a few
    # thousand matching rows are index-only reads, as they are on a live system.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) trading_pokemon")


def _script(paths: list[str]) -> str:
    table = ",\n".join(f'"{p}"' for p in paths)
    return (
        "math.randomseed(os.time() + math.floor(os.clock() * 1000000))\n"
        f"local paths = {{\n{table}\n}}\n"
        "request = function() return wrk.format('GET', paths[math.random(#paths)]) end\n"
    )


def _paths(kind: str, n: int, rng: random.Random) -> list[str]:
    base = "/api/trading/pokemon"
    if kind == "first_page":
        return [f"{base}?limit=50"]
    if kind == "cursor_random":
        return [
            f"{base}?limit=50&cursor={encode_keyset('id', [f'ts{rng.randrange(n):07d}'])}"
            for _ in range(PATHS_PER_KIND)
        ]
    if kind == "offset_random":
        top = min(n, 10_000)
        return [f"{base}?limit=50&offset={rng.randrange(top)}" for _ in range(PATHS_PER_KIND)]
    if kind == "owner_random":
        return [f"{base}?limit=50&owner=ts{1 + rng.randrange(TRAINERS):04d}" for _ in range(PATHS_PER_KIND)]
    raise ValueError(kind)


def _load(ctx: Context, base: str, paths: list[str]) -> Any:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_script(paths))
        script = f.name

    def run() -> dict[str, Any]:
        return wrk(base + "/", duration=ctx.duration, connections=CLIENTS, script=script)

    return run, script


def _plot(results: dict[str, Any]) -> Path:
    return plot_sizes(
        results,
        ["first_page", "cursor_random", "offset_random", "owner_random"],
        xlabel="pokemon stored",
        title="GET /api/trading/pokemon, uncached, 16 clients, by table size",
        name="trading_lists_scale.png",
    )


def lists_scale(ctx: Context) -> dict[str, Any]:
    dsn = os.environ["DATABASE_URL"]
    sizes = [int(s) for s in os.environ.get("BENCH_TRADING_SIZES", ",".join(map(str, SIZES))).split(",")]
    server = Server(kind=ctx.server.kind, workers=ctx.server.workers, env={"CACHE_BYPASS_SURFACES": BYPASS})
    server.start()
    rng = random.Random(21)
    results: dict[str, Any] = {}
    try:
        for n in sizes:
            _fill(dsn, n)
            status, _, headers = fetch(server.base + "/api/trading/pokemon?limit=50")
            if status != 200 or {k.lower(): v for k, v in headers.items()}.get("x-cache") == "hit":
                raise RuntimeError(f"the uncached server answered {status} {headers}")
            loads, scripts = {}, []
            for kind in ("first_page", "cursor_random", "offset_random", "owner_random"):
                run, script = _load(ctx, server.base, _paths(kind, n, rng))
                loads[kind] = run
                scripts.append(script)
            try:
                medians, _ = alternate(loads, ctx.rounds)
            finally:
                for script in scripts:
                    os.unlink(script)
            results[str(n)] = medians
            report_size(n, "pokemon", medians)
    finally:
        server.stop()
    _plot(results)
    return scale_result(
        results,
        sizes,
        clients=CLIENTS,
        target="every list at the largest size within 2x of the smallest (ratio >= 0.5)",
        rounds=ctx.rounds,
    )


SCENARIOS = [
    Scenario(
        "trading_lists_scale",
        "GET /api/trading/pokemon uncached at 100/100k/1M pokemon: first page, random cursor, offset, owner",
        lists_scale,
        needs=("postgres",),
        app="trading",
        rounds="own",
    ),
]
