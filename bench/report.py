"""`make bench-report`: read every bench/results/<scenario>.json and write bench/REPORT.md.

    python bench/report.py [--results DIR] [--out FILE]

`make bench` runs it after the scenarios. The report is derived only from the result files, so it can be rebuilt
at any time; its images are the plots beside them, linked relative to REPORT.md (results/<scenario>.png).
Targets come from the result itself when the scenario records one (``target_ratio``, ``target_*_per_s``,
``limits``, ``target``), otherwise from ``ISSUE_TARGETS`` below (the "Numbers" sections of issues #3-#7).
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
REPORT = BENCH / "REPORT.md"

OK, FAIL, NONE = "✅", "❌", "—"

# Scenarios in the order of the apps; anything else follows alphabetically.
ORDER = [
    "home_cached",
    "storefront_cached",
    "storefront_uncached",
    "storefront_orders",
    "rentals_title_list",
    "rentals_catalogue_page",
    "rentals_rent_return_cycle",
    "trading_trainers_cached",
    "trading_exchange_16",
    "trading_import_1m",
    "kvstore_get_hit",
    "kvstore_put_throughput",
    "kvstore_cas_contention",
    "kvstore_import_vs_etcd",
    "edge_store_page",
]

# The uncached path of the same response, where the name pairing (<x>_cached / <x>_uncached) does not find it.
UNCACHED_OF = {"edge_store_page": "storefront_uncached"}


def _app(out: dict[str, Any]) -> dict[str, Any]:
    app = out.get("app")
    return app if isinstance(app, dict) else {}


def _ratio_at_least(r: float) -> Callable[[dict[str, Any]], bool]:
    return lambda out: (out.get("ratio_to_nginx") or 0) >= r


@dataclass(frozen=True)
class Target:
    text: str
    met: Callable[[dict[str, Any]], bool]


# From the issues' "Numbers" sections, for scenarios whose result does not carry its own target.
ISSUE_TARGETS: dict[str, Target] = {
    "storefront_cached": Target("≥ 0.10× nginx", _ratio_at_least(0.10)),  # 3
    "storefront_uncached": Target("≥ 500 req/s", lambda o: _app(o).get("rps", 0) >= 500),  # 3
    "storefront_orders": Target(
        "≥ 300 orders/s; race: exactly 100 orders",
        lambda o: _app(o).get("orders_per_s", 0) >= 300 and bool(o.get("race", {}).get("exactly_100")),
    ),  # 3
    "rentals_title_list": Target("≥ 0.08× nginx", _ratio_at_least(0.08)),  # 4
    "rentals_rent_return_cycle": Target(
        "≥ 300 cycles/s, 0 double rentals, 0 lost charges",
        lambda o: (
            _app(o).get("rps", 0) >= 300 and o.get("double_rentals") == 0 and o.get("lost_charges") == 0
        ),
    ),  # 4
    "trading_import_1m": Target(
        "≤ 30 s, peak RSS < 250 MB",
        lambda o: o["first_import"]["wall_s"] <= 30 and o["first_import"]["peak_rss_mb"] < 250,
    ),  # 5
    "trading_exchange_16": Target(
        "0 invariant violations", lambda o: o.get("invariant_violations") == 0
    ),  # 5
    "trading_trainers_cached": Target("≥ 0.08× nginx", _ratio_at_least(0.08)),  # 5
    "kvstore_get_hit": Target("≥ 0.10× nginx", _ratio_at_least(0.10)),  # 6
    "kvstore_put_throughput": Target("≥ 1,000 writes/s", lambda o: o.get("writes_per_s", 0) >= 1000),  # 6
    "kvstore_cas_contention": Target(
        "final value exactly 3,200", lambda o: o.get("final_value") == 3200
    ),  # 6
    "edge_store_page": Target("≥ 0.5× nginx", _ratio_at_least(0.5)),  # 7
}


@dataclass
class Result:
    scenario: str
    label: str  # the server the scenario ran on, e.g. "granianx2"
    description: str
    meta: dict[str, Any]
    out: dict[str, Any]


@dataclass
class Row:
    result: Result
    value: str
    p50: str
    p99: str
    ratio_nginx: str
    ratio_uncached: str
    target: str
    met: str
    checks: list[tuple[str, bool | None]] = field(default_factory=list)


def load(results_dir: Path) -> list[Result]:
    found: list[Result] = []
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        for label, out in (data.get("results") or {}).items():
            found.append(
                Result(
                    scenario=data.get("scenario", path.stem),
                    label=label,
                    description=data.get("description", ""),
                    meta=data.get("meta", {}),
                    out=out,
                )
            )
    rank = {name: i for i, name in enumerate(ORDER)}
    found.sort(key=lambda r: (rank.get(r.scenario, len(ORDER)), r.scenario, r.label))
    return found


def num(v: float, digits: int = 0) -> str:
    return f"{v:,.{digits}f}"


def ms(v: Any) -> str:
    if not isinstance(v, int | float) or v != v:  # None or NaN
        return NONE
    return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms" if v < 100 else f"{v:,.0f} ms"


def ratio(v: Any, spread: Any = None, rounds: Any = None) -> str:
    if not isinstance(v, int | float):
        return NONE
    text = f"{v:.3f}×"
    if isinstance(spread, list) and len(spread) == 2:
        text += f" ({spread[0]:.3f}–{spread[1]:.3f}, {rounds} rounds)"
    return text


def throughput(out: dict[str, Any]) -> tuple[float | None, str]:
    """The scenario's headline number and its unit (req/s unless the scenario counts something else)."""
    app = _app(out)
    if "first_import" in out:
        if isinstance(out.get("import_s"), dict):
            return out["import_s"]["median"], "s import"
        return out["first_import"]["wall_s"], "s import"
    if "time_ratio_to_etcd" in out:
        return out["bazaar"]["wall_s"], "s import"
    if "writes_per_s" in out:
        return out["writes_per_s"], "writes/s"
    if "exchanges_per_s" in out:
        return out["exchanges_per_s"], "exchanges/s"
    if "orders_per_s" in app:
        return app["orders_per_s"], "orders/s"
    if "rps" in app:
        return app["rps"], out.get("unit", "req/s")
    return None, ""


def value_cell(out: dict[str, Any]) -> str:
    value, unit = throughput(out)
    if value is None:
        return NONE
    if "first_import" in out:
        first = out["first_import"]
        rows_per_s = first["rows"] / first["wall_s"] if first.get("wall_s") else 0
        text = f"**{num(value, 1)} s** for {num(first['rows'])} rows ({num(rows_per_s)} rows/s)"
        if isinstance(out.get("import_s"), dict) and out.get("ratio_to_copy") is not None:
            imp, ref = out["import_s"], out["copy_reference"]["wall_s"]
            text = (
                f"**{num(imp['median'], 1)} s** for {num(first['rows'])} rows (runs {num(imp['spread'][0], 1)}–"
                f"{num(imp['spread'][1], 1)}, median of {out['rounds']}); COPY into a plain table "
                f"{num(ref['median'], 1)} s: **{ratio(out['ratio_to_copy'], out.get('ratio_spread'), out['rounds'])} "
                "COPY**"
            )
        return text
    if "time_ratio_to_etcd" in out:
        return _vs_etcd_cell(out)
    text = f"**{num(value, 1 if value < 100 else 0)}** {unit}"
    spread = out.get("spread") or _app(out).get("rps_spread")
    if isinstance(spread, list) and len(spread) == 2 and out.get("rounds", 1) > 1:
        digits = 1 if value < 100 else 0
        text += f" (runs {num(spread[0], digits)}–{num(spread[1], digits)}, median of {out['rounds']})"
    elif out.get("rounds") == 1:
        text += " (one run)"
    if "exchanges_per_s" in out and "rps" in _app(out):
        text += f" ({num(_app(out)['rps'])} HTTP req/s)"
    return text


def _vs_etcd_cell(out: dict[str, Any]) -> str:
    """A load timed next to etcd's (kvstore_import_vs_etcd): both medians with their spread, and Bazaar's time over
    etcd's taken round by round."""
    mine, ref = out["bazaar"], out[out["reference"]]
    low, high = out["time_ratio_spread"] or [None, None]
    return (
        f"**{num(mine['wall_s'], 1)} s** for {num(out['keys'])} keys (runs {num(mine['spread'][0], 1)}–"
        f"{num(mine['spread'][1], 1)}, median of {out['rounds']}); etcd ({out['reference'].replace('_', ' ')}, "
        f"{ref['clients']} client(s), txns of {num(out['etcd_max_txn_ops'])}) {num(ref['wall_s'], 1)} s "
        f"(runs {num(ref['spread'][0], 1)}–{num(ref['spread'][1], 1)}); **{out['time_ratio_to_etcd']:.2f}× "
        f"etcd's time** (rounds {low:.2f}–{high:.2f})"
    )


def target_of(r: Result) -> tuple[str, str]:
    """(target text, ✅/❌/—): the result's own target first, then the issue's."""
    out = r.out
    met: Any = out.get("meets_target", out.get("target_met", out.get("within_limits")))
    text = ""
    if "target_ratio" in out:
        text = f"≥ {out['target_ratio']:.2f}× nginx"
    elif "target_writes_per_s" in out:
        text = f"≥ {num(out['target_writes_per_s'])} writes/s"
    elif "target_cycles_per_s" in out:
        text = f"≥ {num(out['target_cycles_per_s'])} cycles/s"
        met = _app(out).get("rps", 0) >= out["target_cycles_per_s"] if met is None else met
    elif "limits" in out:
        lim = out["limits"]
        text = f"≤ {num(lim['max_seconds'])} s"
        if "max_peak_rss_mb" in lim:
            text += f", peak RSS < {num(lim['max_peak_rss_mb'])} MB"
        if "max_ratio_to_copy" in lim:
            text += f", ≤ {num(lim['max_ratio_to_copy'])}× COPY"
    elif isinstance(out.get("target"), str) and r.scenario not in ISSUE_TARGETS:
        text = out["target"]
    issue = ISSUE_TARGETS.get(r.scenario)
    if not text and issue is not None:
        text = issue.text
    if met is None and issue is not None:
        try:
            met = issue.met(out)
        except (KeyError, TypeError):
            met = None
    if not text:
        return NONE, NONE
    return text, NONE if met is None else OK if met else FAIL


def checks_of(out: dict[str, Any]) -> list[tuple[str, bool | None]]:
    """Correctness lines: (text, passed) or (text, None) for context that is not a pass/fail."""
    lines: list[tuple[str, bool | None]] = []
    for key, what in (("app", "under load"), ("scaled_out_no_edge", "through nginx without the edge cache")):
        load_ = out.get(key)
        if isinstance(load_, dict) and "non_2xx" in load_:
            bad, sock = load_["non_2xx"], load_.get("socket_errors", 0)
            lines.append(
                (f"{num(bad)} non-2xx answers and {num(sock)} socket errors {what}", bad == 0 and sock == 0)
            )
    if "products_on_page" in out:
        lines.append(
            (f"{out['products_on_page']} products on the page, {num(out.get('bytes', 0))} bytes", None)
        )
    if "edge_x_cache_status_after_load" in out:
        status = out["edge_x_cache_status_after_load"]
        lines.append((f"X-Cache-Status after the load: {status}", status == "HIT"))
    race = out.get("race")
    if isinstance(race, dict):
        lines.append(
            (
                f"{race.get('buyers')} buyers race for 100 units: {race.get('created_201')} orders created, "
                f"{race.get('out_of_stock_409')} out-of-stock 409s, other answers {race.get('other') or 0}, "
                f"final stock {race.get('final_stock')}",
                bool(race.get("exactly_100")),
            )
        )
    cost = out.get("readers_cost")
    if isinstance(cost, dict) and cost.get("rounds"):
        rounds = cost["rounds"]
        bars = out.get("bars", {})
        lines.append(
            (
                "readers' cost of the orders: median "
                f"{cost['median'] * 100:.1f} % of {len(rounds)} paired rounds (rounds {min(rounds) * 100:.1f} to "
                f"{max(rounds) * 100:.1f} %); readers "
                + " → ".join(f"{num(v)} req/s" for v in bars.values())
                + f"; {out.get('orders', {}).get('placed_per_s')} orders/s placed",
                None,
            )
        )
    email = out.get("email")
    if isinstance(email, dict):
        lines.append(
            (
                f"vendor e-mails delivered: {num(email.get('emails_sent', 0))} for {num(email.get('orders', 0))} "
                f"orders, {email.get('drain_s_after_load')} s to drain after the load ({email.get('path', '')})",
                bool(email.get("all_sent")),
            )
        )
    if "double_rentals" in out:
        lines.append((f"{out['double_rentals']} double rentals", out["double_rentals"] == 0))
    if "lost_charges" in out:
        lines.append((f"{out['lost_charges']} lost charges", out["lost_charges"] == 0))
    if "charges_match" in out:
        lines.append(
            (
                f"charges stored {out.get('charges_stored')} = {out.get('charges_seen_by_clients')} acknowledged "
                f"to the clients + the charges of {out.get('returns_unacknowledged_at_cut')} returns whose answer "
                "the end of the load cut off",
                bool(out["charges_match"]),
            )
        )
    if "rented_copies_without_open_rental" in out:
        a, b = out["rented_copies_without_open_rental"], out.get("open_rentals_on_free_copies", 0)
        lines.append(
            (f"{a} rented copies without an open rental, {b} open rentals on free copies", a == 0 and b == 0)
        )
    if "invariant_violations" in out:
        inv = out.get("invariants", {})
        detail = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in inv.items() if k != "violations")
        violations = out["invariant_violations"]
        lines.append((f"{violations} invariant violations ({detail})", violations == 0))
    if "conflict_409_rate" in out:
        lines.append(
            (f"{out['conflict_409_rate'] * 100:.1f} % of exchange requests answered 409 (conflict)", None)
        )
    if "errors_5xx_or_socket" in out:
        lines.append(
            (f"{out['errors_5xx_or_socket']} 5xx or socket errors", out["errors_5xx_or_socket"] == 0)
        )
    errors = out.get("errors")
    if isinstance(errors, dict):
        text = ", ".join(f"{k} {v}" for k, v in errors.items())
        lines.append((f"client errors: {text}", sum(errors.values()) == 0))
    elif isinstance(errors, int):
        lines.append((f"{errors} client errors", errors == 0))
    if "final_value" in out:
        expected = out.get("expected")
        lines.append(
            (
                f"CAS final value {num(out['final_value'])} (expected {num(expected or 0)}), version "
                f"{num(out.get('final_version', 0))}, {num(out.get('conflicts', 0))} version conflicts retried",
                bool(out.get("exact", out["final_value"] == expected)),
            )
        )
    lines.extend(_import_checks(out))
    check = out["bazaar"].get("database_check") if isinstance(out.get("bazaar"), dict) else None
    if isinstance(check, dict) and "revisions" in check:
        keys = out.get("keys")
        lines.append(
            (
                f"last round's import: {num(check['entries'])} entries and {num(check['change_rows'])} change rows "
                f"in {check['revisions']} revision (every round is checked the same way, and etcd's key count)",
                check["entries"] == keys and check["change_rows"] == keys and check["revisions"] == 1,
            )
        )
    return lines


def _import_checks(out: dict[str, Any]) -> list[tuple[str, bool | None]]:
    first = out.get("first_import")
    if not isinstance(first, dict):
        return []
    lines: list[tuple[str, bool | None]] = []
    limit = out.get("limits", {}).get("max_peak_rss_mb", 250)
    peak = max(run.get("peak_rss_mb", 0) for run in (first, out.get("reimport") or {}))
    lines.append(
        (f"peak memory of the importing process {num(peak, 1)} MB (limit < {num(limit)} MB)", peak < limit)
    )
    lines.append(
        (
            f"first import: {num(first['created'])} created, {num(first.get('history_rows', 0))} history rows, "
            f"{num(first['wall_s'], 1)} s",
            bool(first.get("ok")),
        )
    )
    again = out.get("reimport")
    if isinstance(again, dict):
        lines.append(
            (
                f"re-import of the same file: {num(again['updated'])} updated, {num(again['wall_s'], 1)} s",
                bool(again.get("ok")),
            )
        )
    seed = out.get("seed_style_per_row")
    if isinstance(seed, dict):
        lines.append(
            (
                f"for contrast, the seed-style per-row path: {num(seed['rows_per_s'])} rows/s, ≈ "
                f"{num(seed['estimated_seconds_for_file'])} s for the file "
                f"(measured on {num(seed['sample_rows'])} rows, not shipped)",
                None,
            )
        )
    return lines


def uncached_of(r: Result, by_name: dict[tuple[str, str], Result]) -> Result | None:
    name = UNCACHED_OF.get(r.scenario)
    if name is None and r.scenario.endswith("_cached"):
        name = r.scenario[: -len("_cached")] + "_uncached"
    return by_name.get((name, r.label)) if name else None


def rows_of(results: list[Result]) -> list[Row]:
    by_name = {(r.scenario, r.label): r for r in results}
    rows = []
    for r in results:
        out = r.out
        base = uncached_of(r, by_name)
        vs_uncached = NONE
        if base is not None and _app(base.out).get("rps") and _app(out).get("rps"):
            vs_uncached = f"{_app(out)['rps'] / _app(base.out)['rps']:.1f}×"
            if base.meta.get("when") != r.meta.get("when"):
                vs_uncached += " †"
        text, met = target_of(r)
        rows.append(
            Row(
                result=r,
                value=value_cell(out),
                p50=ms(_app(out).get("p50_ms")),
                p99=ms(_app(out).get("p99_ms")),
                ratio_nginx=ratio(out.get("ratio_to_nginx"), out.get("ratio_spread"), out.get("rounds")),
                ratio_uncached=vs_uncached,
                target=text,
                met=met,
                checks=checks_of(out),
            )
        )
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _values(results: list[Result], key: str) -> str:
    seen = sorted({str(r.meta.get(key, "?")) for r in results})
    return " / ".join(seen)


def _span(first: str, last: str) -> str:
    """'2026-11-22 06:38–07:50 UTC' from the ISO times of the first and the last result."""
    try:
        t0, t1 = (datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ") for t in (first, last))
    except ValueError:
        return f"{first} – {last}"
    if t0 == t1:
        return f"{t0:%Y-%m-%d %H:%M} UTC"
    end = f"{t1:%H:%M}" if t0.date() == t1.date() else f" {t1:%Y-%m-%d %H:%M}"
    return f"{t0:%Y-%m-%d %H:%M}–{end} UTC"


def header(results: list[Result]) -> list[str]:
    whens = Counter(r.meta.get("when", "?") for r in results)
    first, last = min(whens), max(whens)
    elapsed = sum(r.out.get("elapsed_s", 0) for r in results)
    lines = [
        "# Bazaar benchmark report",
        "",
        "Generated by `bench/report.py` from `bench/results/*.json`; do not edit by hand "
        "(`make bench-report` rewrites it from the existing results).",
        "",
        f"- **When:** {_span(first, last)}",
        f"- **Where:** {_values(results, 'database')} + {_values(results, 'cache')}, production server "
        f"{_values(results, 'workers')} worker processes × {_values(results, 'threads')} thread, "
        f"{_values(results, 'cpus')} CPUs, {_values(results, 'duration_s')} s per load (wrk on 127.0.0.1); "
        f"servers: {', '.join(sorted({r.label for r in results}))}",
        f"- **Scenarios:** {len({r.scenario for r in results})}, about {elapsed / 60:.0f} min of measuring",
        *_probe_line(results),
        "",
        "All ratios are measured side by side in one run on a shared 2-core machine: the application, PostgreSQL, "
        "Redis, nginx and the load generator share the same two cores, so absolute numbers are low and vary "
        "between runs by ±20 %; the ratios are the comparable figures. Every ratio to nginx compares the very same "
        "response bytes, served by nginx from a file in the same run.",
    ]
    if len(whens) > 1:
        lines += ["", "These results come from more than one run:", ""]
        for when in sorted(whens):
            names = sorted({r.scenario for r in results if r.meta.get("when") == when})
            lines.append(f"- {when}: {', '.join(f'`{n}`' for n in names)}")
        lines += ["", "A ratio marked † relates results from two different runs."]
    lines += [
        "",
        "## Reproduce",
        "",
        "```sh",
        "export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bazaar",
        "export REDIS_URL=redis://127.0.0.1:6379/0",
        "make bench            # every scenario (bench/run.py), then this report",
        "make bench BENCH_ARGS=\"--only 'storefront_*'\"   # a subset; the report still covers every result file",
        "make bench-report     # only rewrite bench/REPORT.md from bench/results/*.json",
        "```",
        "",
        "PostgreSQL and Redis are required for most scenarios: without `DATABASE_URL`/`REDIS_URL` the run uses "
        "SQLite and the in-process cache and skips every scenario that needs them (all write scenarios, the "
        "uncached page, the KV store and the edge). `make bench` installs `wrk` and `nginx` from Debian when "
        "missing. Options: `BENCH_ARGS` (`--only`, `--servers`, `--workers`, `--threads`, `--duration`).",
    ]
    return lines


def _probe_line(results: list[Result]) -> list[str]:
    """The host's state: a fixed Python loop timed (wall clock) before each scenario, and system-wide CPU use from
    /proc/stat before (our servers idle) and during each scenario; a noisy sitting is said so, by scenario."""
    lines = []
    probes: dict[str, float] = {}
    for r in results:
        value = r.out.get("speed_probe_s", r.out.get("cpu_probe_s"))
        if isinstance(value, int | float):
            probes[r.scenario] = float(value)
    if probes:
        slow = max(probes, key=lambda k: probes[k])
        fast = min(probes, key=lambda k: probes[k])
        lines.append(
            f"- **Machine speed:** a fixed 5M-iteration Python loop, timed before each scenario, took "
            f"{probes[fast]:.2f} s (before `{fast}`) to {probes[slow]:.2f} s (before `{slow}`)"
        )
    hosts = {r.scenario: r.out["host"] for r in results if isinstance(r.out.get("host"), dict)}
    if hosts:
        busy = [h["before"].get("busy", 0.0) for h in hosts.values()]
        noisy = {name: h["why"] for name, h in hosts.items() if h.get("noisy")}
        lines.append(
            f"- **Host busyness** (system-wide, /proc/stat, before each scenario with our servers idle): "
            f"{min(busy):.0%}–{max(busy):.0%} of the CPUs busy"
            + (
                f"; **noisy sitting** for {len(noisy)} of {len(hosts)} scenarios: "
                + "; ".join(f"`{n}` ({', '.join(w)})" for n, w in sorted(noisy.items()))
                if noisy
                else "; quiet for every scenario"
            )
        )
    return lines


def table(rows: list[Row], several_servers: bool) -> list[str]:
    lines = [
        "## All scenarios",
        "",
        "| scenario | what it measures | result | p50 | p99 | × nginx | × uncached | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        r = row.result
        name = f"`{r.scenario}`" + (f" ({r.label})" if several_servers else "")
        cells = [name, r.description, row.value, row.p50, row.p99, row.ratio_nginx, row.ratio_uncached]
        lines.append("| " + " | ".join(_cell(c) for c in [*cells, row.target, row.met]) + " |")
    lines += [
        "",
        "× nginx: the application's req/s over nginx serving the same bytes from disk in the same run. "
        "× uncached: over the same page with the cache disabled. p50/p99 are per HTTP request "
        "(for the rent + return cycle: per rent or return; for CAS: per increment including its retries).",
    ]
    return lines


def correctness(rows: list[Row], several_servers: bool) -> list[str]:
    lines = ["## Correctness", ""]
    for row in rows:
        if not row.checks:
            continue
        r = row.result
        lines.append(f"**`{r.scenario}`**" + (f" ({r.label})" if several_servers else ""))
        lines.append("")
        for text, passed in row.checks:
            mark = "" if passed is None else (OK if passed else FAIL) + " "
            lines.append(f"- {mark}{text}")
        lines.append("")
    return lines


def scaled_out(results: list[Result]) -> list[str]:
    by_name = {(r.scenario, r.label): r for r in results}
    lines: list[str] = []
    for edge in (r for r in results if r.scenario == "edge_store_page"):
        out = edge.out
        nginx = out.get("nginx", {})
        table_rows: list[tuple[str, dict[str, Any], Any]] = [
            ("nginx static file, same bytes (the reference)", nginx, 1.0),
            ("nginx edge cache → 2 app servers (1 worker each)", _app(out), out.get("ratio_to_nginx")),
            (
                "nginx → 2 app servers, no edge cache (each answers from Redis)",
                out.get("scaled_out_no_edge", {}),
                out.get("scaled_out_no_edge_ratio_to_nginx"),
            ),
        ]
        for name, what in (
            ("storefront_cached", "single server, 2 workers, cached (`storefront_cached`)"),
            ("storefront_uncached", "single server, 2 workers, cache off (`storefront_uncached`)"),
        ):
            single = by_name.get((name, edge.label))
            if single is not None:
                mark = " †" if single.meta.get("when") != edge.meta.get("when") else ""
                table_rows.append((what + mark, _app(single.out), single.out.get("ratio_to_nginx")))
        lines += [
            "## Scaled out: nginx → 2 app servers, next to the single server",
            "",
            f"The same store page (50 products, {num(out.get('bytes', 0))} bytes) through the production topology "
            "of `make stack`: nginx load-balancing two app servers, with its edge cache (purged by the app on "
            "every write) and without it, next to the single-server numbers for the page. Each row's ratio is to "
            "the nginx static reference of its own run.",
            "",
            "| topology | req/s | p50 | p99 | × nginx static |",
            "|---|---|---|---|---|",
        ]
        for what, load_, vs_nginx in table_rows:
            rps = load_.get("rps")
            rps_text = num(rps) if isinstance(rps, int | float) else NONE
            lines.append(
                f"| {what} | {rps_text} | {ms(load_.get('p50_ms'))} | {ms(load_.get('p99_ms'))} | {ratio(vs_nginx)} |"
            )
        if out.get("edge_over_scaled_out"):
            lines += [
                "",
                f"The edge cache serves the page {out['edge_over_scaled_out']:.1f}× faster than the two app servers behind plain nginx.",
            ]
        lines.append("")
    return lines


def _spread(cell: dict[str, Any]) -> str:
    lo_hi = cell.get("rps_spread")
    if isinstance(lo_hi, list) and len(lo_hi) == 2:
        return f" ({num(lo_hi[0])}–{num(lo_hi[1])})"
    return ""


def scale_curves(results: list[Result]) -> list[str]:
    """One table per by-size scenario (``out['sizes']``): req/s (median of rounds, spread) and p99 per size, the
    largest size over the smallest, and the ratio to a reference system where the scenario ran one (etcd)."""
    scaled = [r for r in results if isinstance(r.out.get("sizes"), dict)]
    if not scaled:
        return []
    lines = [
        "## Scale curves: the same request at growing data sizes",
        "",
        "Each cell: median req/s of alternating rounds (lowest–highest round) · p99. `largest ÷ smallest` is the "
        "req/s at the largest size over the smallest (the goal: ≥ 0.5, i.e. within 2×).",
        "",
    ]
    for r in scaled:
        sizes = r.out["sizes"]
        keys = list(sizes)
        ops = list(next(iter(sizes.values())))
        has_ref = any(isinstance(c, dict) and "bazaar" in c for c in sizes[keys[0]].values())
        host = r.out.get("host") or {}
        lines += [f"### `{r.scenario}` ({r.label})", "", r.description + ".", ""]
        if host.get("noisy"):
            lines += [f"Noisy sitting: {'; '.join(host.get('why', []))}.", ""]
        head = ["operation", *[f"{int(k):,}" for k in keys], "largest ÷ smallest"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        flat = r.out.get("largest_over_smallest") or {}
        for op in ops:
            systems: list[tuple[str, str | None]] = (
                [("Bazaar", "bazaar"), ("etcd", "etcd")] if has_ref else [("", None)]
            )
            for name, key in systems:
                cells = []
                for k in keys:
                    cell = sizes[k][op]
                    cell = cell.get(key, {}) if key else cell
                    if "rps" not in cell:
                        cells.append(NONE)
                        continue
                    text = f"{num(cell['rps'])}{_spread(cell)} · {ms(cell.get('p99_ms'))}"
                    if key == "bazaar" and sizes[k][op].get("ratio_to_etcd") is not None:
                        text += f" · **{sizes[k][op]['ratio_to_etcd']:.2f}× etcd**"
                    cells.append(text)
                ratio_cell = NONE
                if key in (None, "bazaar") and flat.get(op) is not None:
                    ratio_cell = f"{flat[op]:.2f}"
                elif key == "etcd":
                    first, last = sizes[keys[0]][op].get("etcd", {}), sizes[keys[-1]][op].get("etcd", {})
                    if first.get("rps") and last.get("rps"):
                        ratio_cell = f"{last['rps'] / first['rps']:.2f}"
                label = f"`{op}`" + (f" {name}" if name else "")
                lines.append("| " + " | ".join([label, *cells, ratio_cell]) + " |")
        extra = []
        if r.out.get("random_over_hot_at_largest") is not None:
            extra.append(
                f"random-key GET over hot-key GET at the largest size: {r.out['random_over_hot_at_largest']:.2f}"
            )
        if r.out.get("target"):
            extra.append(f"target: {r.out['target']}")
        for goal, text in (r.out.get("targets") or {}).items():
            extra.append(f"target `{goal}`: {text}")
        if "meets_target" in r.out:
            extra.append("met" if r.out["meets_target"] else "**not met**")
        if extra:
            lines += ["", "; ".join(extra) + "."]
        lines.append("")
    return lines


def plots(results: list[Result], results_dir: Path, report_dir: Path) -> list[str]:
    lines = ["## Plots", ""]
    for name in dict.fromkeys(r.scenario for r in results):
        png = results_dir / f"{name}.png"
        if png.exists():
            rel = Path(os.path.relpath(png.resolve(), report_dir.resolve())).as_posix()
            lines += [f"### `{name}`", "", f"![{name}]({rel})", ""]
    return lines


def build(results_dir: Path = RESULTS, report_path: Path = REPORT) -> str:
    results = load(results_dir)
    if not results:
        return "# Bazaar benchmark report\n\nNo results yet: run `make bench`.\n"
    rows = rows_of(results)
    several = len({r.label for r in results}) > 1
    parts = [
        *header(results),
        "",
        *table(rows, several),
        "",
        *scaled_out(results),
        *scale_curves(results),
        *correctness(rows, several),
        *plots(results, results_dir, report_path.parent),
    ]
    return "\n".join(parts).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=REPORT)
    args = parser.parse_args()
    args.out.write_text(build(args.results, args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
