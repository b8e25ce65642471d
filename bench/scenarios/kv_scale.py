"""The KV store at 1k, 100k and 1M keys, next to etcd in the same sitting.

For each size: GET of one hot key, GET of uniformly random keys (mostly cache misses at 1M keys) and PUT of random
existing keys, 16 clients each, Bazaar and etcd alternating round by round (Bazaar, etcd, Bazaar, etcd, ...) with
the same wrk client. etcd (Debian's etcd-server, one member, data in a temp dir) is driven through its v3 JSON
gateway, reads linearizable (its default), as Bazaar's reads are from the primary database.

Setup is not measured: the sizes are filled cumulatively — Bazaar's rows by one ``INSERT … SELECT
generate_series`` straight into the bench database (the tenant is the demo tenant), then ``VACUUM (ANALYZE)`` as
pgbench does after loading, etcd's by 10,000-op transactions. The random GET's Lua script counts ``X-Cache: miss`` answers, so the report says how many of the
random reads really were misses.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import (
    Context,
    Etcd,
    Scenario,
    alternate,
    b64,
    ensure_tools,
    paired_ratio,
    save_figure,
    size_axes,
    wrk,
)
from bench.scenarios.kvstore import _demo_key

SIZES = (1_000, 100_000, 1_000_000)
KEY_PREFIX = "kvbench/s"  # 9 bytes: with 9 digits the key is six 3-byte groups, so its base64 is the prefix's
KEY_FORMAT = KEY_PREFIX + "%09d"  # and three precomputed 3-digit groups' (wrk's Lua builds etcd keys cheaply)
VALUE = {"n": 1, "text": "bazaar kv bench payload", "tags": ["a", "b", "c"]}
CLIENTS = 16

_LUA_BASE64 = r"""
local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function b64(data)
  return ((data:gsub('.', function(x)
    local r, byte = '', x:byte()
    for i = 8, 1, -1 do r = r .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({'', '==', '='})[#data % 3 + 1])
end
"""

_LUA_COMMON = r"""
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
local n = %(n)d
local function pick_i() return math.random(0, n - 1) end
local function pick() return string.format("%(fmt)s", pick_i()) end
"""

_LUA_KEY64 = r"""
local groups = {}
for i = 0, 999 do groups[i] = b64(string.format("%%03d", i)) end
local prefix64 = "%(prefix64)s"
local function pick64()
  local i = pick_i()
  return prefix64 .. groups[math.floor(i / 1000000)] .. groups[math.floor(i / 1000) %% 1000] .. groups[i %% 1000]
end
"""

_LUA_COUNT_MISSES = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
misses = 0
function response(status, headers, body)
  if headers["X-Cache"] == "miss" or headers["x-cache"] == "miss" then misses = misses + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("misses") or 0) end
  io.write(string.format("MISSES %d\n", total))
end
"""


def _lua(kind: str, n: int, api_key: str) -> str:
    common = _LUA_COMMON % {"n": n, "fmt": KEY_FORMAT}
    value_json = json.dumps({"value": VALUE})
    etcd_value = b64(json.dumps(VALUE))
    key64 = _LUA_KEY64 % {"prefix64": b64(KEY_PREFIX)}
    if kind == "bazaar_get":
        return (
            common
            + f'local headers = {{["Authorization"] = "Bearer {api_key}"}}\n'
            + 'request = function() return wrk.format("GET", "/api/kv/keys/" .. pick(), headers) end\n'
            + _LUA_COUNT_MISSES
        )
    if kind == "bazaar_put":
        return (
            common
            + f'local headers = {{["Authorization"] = "Bearer {api_key}", ["Content-Type"] = "application/json"}}\n'
            + f"local body = [[{value_json}]]\n"
            + 'request = function() return wrk.format("PUT", "/api/kv/keys/" .. pick(), headers, body) end\n'
        )
    if kind == "etcd_get":
        return (
            common
            + _LUA_BASE64
            + key64
            + 'local headers = {["Content-Type"] = "application/json"}\n'
            + "request = function()\n"
            + '  return wrk.format("POST", "/v3/kv/range", headers, \'{"key":"\' .. pick64() .. \'"}\')\n'
            + "end\n"
        )
    if kind == "etcd_put":
        return (
            common
            + _LUA_BASE64
            + key64
            + 'local headers = {["Content-Type"] = "application/json"}\n'
            + "request = function()\n"
            + '  return wrk.format("POST", "/v3/kv/put", headers,'
            + f' \'{{"key":"\' .. pick64() .. \'","value":"{etcd_value}"}}\')\n'
            + "end\n"
        )
    raise ValueError(kind)


def _tenant_of(dsn: str, api_key: str) -> int:
    import psycopg

    digest = hashlib.sha256(api_key.encode()).hexdigest()
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT tenant_id FROM kvstore_tenantapikey WHERE digest = %s", [digest]
        ).fetchone()
    if row is None:
        raise RuntimeError("the demo API key is not in the bench database")
    return int(row[0])


def _fill_bazaar(dsn: str, tenant_id: int, upto: int) -> float:
    """Rows scale/k0000000 .. up to ``upto`` (idempotent); returns the seconds it took."""
    import psycopg

    started = time.monotonic()
    with psycopg.connect(dsn) as conn:
        conn.execute(
            """INSERT INTO kvstore_entry (tenant_id, "key", value, version, created_at, updated_at, expires_at)
            SELECT %s, format('kvbench/s%%s', lpad(i::text, 9, '0')), %s,
                   (SELECT version_floor + 1 FROM kvstore_tenant WHERE id = %s), now(), now(), NULL
            FROM generate_series(0, %s - 1) AS i
            ON CONFLICT (tenant_id, "key") DO NOTHING""",
            [tenant_id, json.dumps(VALUE, separators=(",", ":")), tenant_id, upto],
        )
    # As pgbench does after loading: VACUUM sets the rows' hint bits and the visibility map now, so the measured
    # reads meet the table as it is once settled, not the first reads after a bulk load (each of which dirties
    # its page to record that the loading transaction committed, for the checkpointer to write out again).
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) kvstore_entry")
    return round(time.monotonic() - started, 1)


def _fill_etcd(etcd: Etcd, start: int, upto: int) -> float:
    started = time.monotonic()
    value = b64(json.dumps(VALUE))
    for lo in range(start, upto, 10_000):
        ops = [
            {"requestPut": {"key": b64(KEY_FORMAT % i), "value": value}}
            for i in range(lo, min(upto, lo + 10_000))
        ]
        etcd.call("/v3/kv/txn", {"success": ops})
    return round(time.monotonic() - started, 1)


def _load(ctx: Context, base: str, path: str, script_text: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script_text)
        script = f.name
    try:
        out = wrk(base + path, duration=ctx.duration, connections=CLIENTS, script=script)
    finally:
        os.unlink(script)
    raw = out.get("raw", "")
    for line in raw.splitlines():
        if line.startswith("MISSES "):
            out["cache_misses"] = int(line.split()[1])
    return out


def _runner(ctx: Context, base: str, script_text: str) -> Callable[[], dict[str, Any]]:
    return lambda: _load(ctx, base, "/", script_text)


def _plot(sizes: dict[str, Any]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    xs = [int(s) for s in sizes]
    styles = {"bazaar": ("#b4461b", "-"), "etcd": ("#555555", "--")}
    for op, marker in (("get_hot", "o"), ("get_random", "s"), ("put_random", "^")):
        for system, (color, line) in styles.items():
            rps = [sizes[s][op][system]["rps"] for s in sizes]
            p99 = [sizes[s][op][system]["p99_ms"] for s in sizes]
            label = f"{system} {op.replace('_', ' ')}"
            axes[0].plot(xs, rps, marker=marker, color=color, linestyle=line, label=label)
            axes[1].plot(xs, p99, marker=marker, color=color, linestyle=line, label=label)
    size_axes(axes, "keys stored")
    axes[1].set_yscale("log")
    fig.suptitle("KV store vs etcd by size, 16 clients, alternating rounds", fontsize=10)
    return save_figure(fig, "kvstore_scale_vs_etcd.png")


def scale_vs_etcd(ctx: Context) -> dict[str, Any]:
    ensure_tools(etcd=True)
    dsn = os.environ["DATABASE_URL"]
    api_key = _demo_key(ctx)
    tenant_id = _tenant_of(dsn, api_key)
    sizes = [int(s) for s in os.environ.get("BENCH_KV_SIZES", ",".join(map(str, SIZES))).split(",")]
    etcd = Etcd().start()
    results: dict[str, Any] = {}
    fills: dict[str, Any] = {}
    try:
        filled = 0
        for n in sizes:
            fills[str(n)] = {
                "bazaar_s": _fill_bazaar(dsn, tenant_id, n),
                "etcd_s": _fill_etcd(etcd, filled, n),
            }
            filled = n
            per_op: dict[str, Any] = {}
            for op, bazaar_kind, etcd_kind, keys in (
                ("get_hot", "bazaar_get", "etcd_get", 1),
                ("get_random", "bazaar_get", "etcd_get", n),
                ("put_random", "bazaar_put", "etcd_put", n),
            ):
                b_script, e_script = _lua(bazaar_kind, keys, api_key), _lua(etcd_kind, keys, api_key)
                medians, rounds = alternate(
                    {
                        "bazaar": _runner(ctx, ctx.server.base, b_script),
                        "etcd": _runner(ctx, etcd.base, e_script),
                    },
                    ctx.rounds,
                )
                ratio = paired_ratio(rounds, "bazaar", "etcd")
                per_op[op] = {**medians, "ratio_to_etcd": ratio["median"], "ratio_spread": ratio["spread"]}
                print(
                    f"   {n:>9,} keys {op:10}: bazaar {medians['bazaar']['rps']:>8,.0f} req/s, "
                    f"etcd {medians['etcd']['rps']:>8,.0f} req/s, ratio {ratio['median']} {ratio['spread']}",
                    flush=True,
                )
            results[str(n)] = per_op
    finally:
        etcd.stop()
    _plot(results)
    smallest, largest = str(sizes[0]), str(sizes[-1])

    def flatness(op: str) -> float | None:
        small = results[smallest][op]["bazaar"]["rps"]
        return round(results[largest][op]["bazaar"]["rps"] / small, 3) if small else None

    big = results[largest]
    return {
        "sizes": results,
        "fill_s": fills,
        "clients": CLIENTS,
        "largest_over_smallest": {op: flatness(op) for op in ("get_hot", "get_random", "put_random")},
        "random_over_hot_at_largest": (
            round(big["get_random"]["bazaar"]["rps"] / big["get_hot"]["bazaar"]["rps"], 3)
            if big["get_hot"]["bazaar"]["rps"]
            else None
        ),
        "targets": {
            "get_random_vs_etcd": "≥ 1.0× etcd at the largest size",
            "get_random_vs_hot": "≥ 0.5× the hot-key figure",
            "put_vs_etcd": "≥ 1.0× etcd at 16 clients",
        },
        "meets_target": bool(
            (big["get_random"]["ratio_to_etcd"] or 0) >= 1.0
            and (big["put_random"]["ratio_to_etcd"] or 0) >= 1.0
        ),
        "rounds": ctx.rounds,
    }


SCENARIOS = [
    Scenario(
        "kvstore_scale_vs_etcd",
        "KV GET (hot key, random keys) and PUT at 1k/100k/1M keys, 16 clients, next to etcd (alternating rounds)",
        scale_vs_etcd,
        needs=("postgres", "redis"),
        app="kvstore",
        rounds="own",
    ),
]
