"""bench/capacity_model.py: a small saved result in, the capacity page's numbers out (no load is run here); and
the committed docs/capacity.md is exactly what the generator makes of the committed results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import capacity_model as model

HOST = {"before": {"busy": 0.1}, "during": {}, "noisy": False, "why": []}


def _sitting(
    name: str, rnd: int, app: float, pg: float, redis: float, **per_request: float
) -> dict[str, Any]:
    counters = {"write_xacts": 0.0, "commits": 1.0, "rollbacks": 0.0, "rows_fetched": 0.0, "rows_written": 0.0,
                "wal_bytes": 0.0, "redis_commands": 1.0, **per_request}  # fmt: skip
    return {
        "scenario": name,
        "round": rnd,
        "rps": 1000.0 * rnd,
        "p99_ms": 10.0,
        "requests": 1000,
        "bad": 0,
        "seconds": 1.0,
        "cpu_s": {"other": 0.5 if name != "mix" else 0.25},
        "cpu_ms_per_request": {
            "app": app,
            "postgres": pg,
            "redis": redis,
            "loadgen": 0.1,
            "host": 2.0,
            "other": 0.5,
        },
        "per_request": counters,
        "host": {**HOST, "noisy": rnd == 2},
    }


def _header(command: str) -> dict[str, Any]:
    return {
        "when": "2026-01-02T03:04:05Z",
        "command": f"python bench/capacity.py {command}",
        "setup": {"app": "a", "postgres": "p", "redis": "r", "load": "l", "cpus": 2},
        "mix": {"store_cached": 50, "kv_put": 50},
    }


def _cpu() -> dict[str, Any]:
    sittings = []
    for rnd in (1, 2):
        # Round 2 costs 20 % more: the published figure is the median of the two, with the spread.
        f = 1.0 if rnd == 1 else 1.2
        sittings += [
            _sitting("store_cached", rnd, 0.1 * f, 0.0, 0.01),
            _sitting(
                "kv_put", rnd, 1.0 * f, 0.5 * f, 0.05, write_xacts=1.0, wal_bytes=1000.0, redis_commands=3.0
            ),
            _sitting(
                "mix", rnd, 0.5 * f, 0.25 * f, 0.03, write_xacts=0.5, wal_bytes=500.0, redis_commands=2.0
            ),
        ]
    return {
        **_header("measure"),
        "fsync": {"open_datasync_per_s": 700.0, "fdatasync_per_s": 500.0},
        "sittings": sittings,
    }


def _curve() -> dict[str, Any]:
    points = []
    for count, rps, app_cores in ((1, 900.0, 1.0), (2, 1200.0, 1.3), (4, 1150.0, 1.3)):
        cpu_s = {"app": app_cores, "postgres": 0.3, "pg_replica": 0.05, "pgbouncer": 0.05, "redis": 0.05,
                 "nginx": 0.1, "celery": 0.0, "loadgen": 0.1, "other": 0.35 if count > 1 else 0.2}  # fmt: skip
        cpu_s["host"] = sum(cpu_s.values())
        points.append(
            {
                "app_servers": count,
                "rps": rps,
                "p99_ms": 20.0 * count,
                "requests": int(rps),
                "bad": 0,
                "seconds": 1.0,
                "cpu_s": cpu_s,
                "cpu_ms_per_request": {k: 1000 * v / rps for k, v in cpu_s.items()},
                "host": HOST,
            }
        )
    return {**_header("curve"), "points": points}


def test_model_arithmetic_from_a_small_saved_result() -> None:
    scen = model.per_scenario(_cpu())
    assert scen["kv_put"]["cpu_ms"]["app"] == {"median": pytest.approx(1.1), "spread": [1.0, 1.2]}
    assert (scen["kv_put"]["noisy"], scen["kv_put"]["rounds"]) == (1, 2)
    cost = model.mix_cost(scen, {"store_cached": 50, "kv_put": 50})
    assert cost["app"] == pytest.approx((0.11 + 1.1) / 2)
    assert cost["write_xacts"] == pytest.approx(0.5)
    # The model sizes with the mix as measured in one load (median of 0.5 and 0.6 ms), not the weighted sum.
    measured = model.model_cost(scen, {"store_cached": 50, "kv_put": 50})
    assert measured["app"] == pytest.approx(0.55)
    [k1, _k10, k100] = model.sizing(measured)
    # 1,000 req/s x 0.55 ms = 0.55 cores of app, sized at 70 %: 0.786 -> 1 process.
    assert k1["app_cores"] == pytest.approx(0.55 / 0.7)
    assert k1["app_processes"] == 1
    assert k100["write_commits_per_s"] == pytest.approx(50_000)
    assert k100["wal_mb_per_s"] == pytest.approx(50.0)
    assert k100["redis_commands_per_s"] == pytest.approx(200_000)
    # One app process is bounded by one core; two are bounded by the host.
    assert model.predict(1, measured, 2.0) == {
        "rps": pytest.approx(1000 / 0.55),
        "bound": "app processes (1 core each)",
    }
    # Four are bounded by the host: 2 cores / (0.55 + 0.275 + 0.03 + 0.1 ms) per request.
    assert model.predict(4, measured, 2.0) == {"rps": pytest.approx(2000 / 0.955), "bound": "host CPU"}


def test_report_renders_tables_and_the_curve(tmp_path: Path) -> None:
    text = model.render(_cpu(), _curve())
    assert "| `kv_put` | 1,500 | 1.100 (1.000–1.200) | 0.550 (0.500–0.600) | 0.050 |" in text
    assert "| **the mix, from the rows above** | | 0.605 |" in text
    # Summed kinds: 0.605 + 0.275 + 0.03 = 0.910 ms; the mix measured: 0.55 + 0.275 + 0.03 = 0.855 ms.
    assert "cost 0.855 ms of app + PostgreSQL + Redis CPU" in text
    assert "predicts 0.910 ms (+6 %)" in text
    assert "(+6 %). Close; either would do, and **the sizing below uses the mix as measured**" in text
    assert "it never did (the least *rest of host* in any sitting was 0.25 CPU seconds)" in text
    # The commit bound: 50,000 write commits/s at 100k req/s on a disk that flushes 500 times/s.
    assert "completes 500 flushes/s one at a time" in text
    assert "50,000 commits/s would need about 100 commits to share every flush" in text
    assert "| PostgreSQL write commits/s (primary only) | 500 | 5,000 | 50,000 |" in text
    [row] = [line for line in text.splitlines() if line.startswith("| 2 | 1,200")]
    assert "| 40.0 ms |" in row  # p99
    assert "The host's CPU was saturated from 2 app server(s) on" in text
    assert "From 1 to 4 app servers throughput changed ×1.28" in text
    # The plots are drawn from the same results (into a temporary directory, not the tree).
    model.plots(_cpu(), _curve(), tmp_path)
    assert (tmp_path / "capacity_cpu.png").stat().st_size > 0
    assert (tmp_path / "capacity_curve.png").stat().st_size > 0


def test_committed_capacity_page_matches_the_committed_results() -> None:
    cpu, curve = model.load_results()
    assert model.DOC.read_text() == model.render(cpu, curve), (
        "docs/capacity.md is stale: run `python bench/capacity.py --report` and commit it"
    )


def test_results_are_not_read_by_the_bench_report() -> None:
    # bench/report.py tables every results file with a "results" key; the capacity files carry none.
    for name in ("capacity_cpu.json", "capacity_curve.json"):
        path = model.RESULTS / name
        if path.exists():
            assert "results" not in json.loads(path.read_text())
