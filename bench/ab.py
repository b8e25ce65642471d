"""A/B in one sitting: the same scenarios on two revisions of the code, alternating, on the same services.

    python bench/ab.py --base REV [--only PATTERNS] [--rounds 2] [--name NAME]

Absolute numbers on this shared VM move 2x between sittings with the host's load (bench/run.py's CPU probe), so
a before/after claim is only worth a run where both sides alternate within minutes. The base revision is checked
out into a temporary git worktree and run with the same virtualenv (``PYTHONPATH`` points at it, so its servers
import its code); the current working tree is the other side. Each side runs ``bench/run.py --only PATTERNS``
``--rounds`` times, in ABBA order (base first in odd rounds, head first in even ones). Writes bench/results/ab/<name>.json (every run's numbers and CPU probe, medians,
ratios) and a plot beside it. Loads go to 127.0.0.1 only and stop by themselves, as in bench/run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "ab"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def _side_database(url: str, side: str) -> str:
    """``url`` with ``_<side>`` appended to its database name; the database is created when missing."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    name = parts.path.lstrip("/") + f"_{side}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    exists = subprocess.run(
        ["psql", admin, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    if not exists:
        subprocess.run(["psql", admin, "-qc", f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
    return urlunsplit(parts._replace(path="/" + name))


def _run_side(root: Path, only: str, base: bool, duration: int) -> dict[str, dict[str, Any]]:
    """bench/run.py in ``root``; returns {scenario: its result for the one server run}."""
    env = {**os.environ, "BAZAAR_VAR_DIR": str(root / "var" / "bench")}
    if base:
        env["PYTHONPATH"] = str(root)
    url = env.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        # A database per side: the two revisions' migrations differ, and an older revision cannot write rows
        # into a table a newer one has added NOT NULL columns to (its demo would fail, or measure other rows).
        env["DATABASE_URL"] = _side_database(url, "base" if base else "head")
    # And a cache namespace per side: one side's cached pages must never be served to the other.
    env["BAZAAR_CACHE_PREFIX"] = f"{env.get('BAZAAR_CACHE_PREFIX', 'bazaar')}-ab-{'base' if base else 'head'}"
    cmd = [sys.executable, "bench/run.py", "--only", only, "--duration", str(duration)]
    started = time.time()
    subprocess.run(cmd, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((root / "bench" / "results").glob("*.json")):
        if path.stat().st_mtime < started:
            continue  # not written by this run
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "results" in data:
            out[data["scenario"]] = next(iter(data["results"].values()), {})
    return out


def _figure(name: str, rows: list[dict[str, Any]], base: str, head: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.75 * len(rows)), dpi=110)
    labels = [r["scenario"] for r in rows]
    olds = [r["base_median"] for r in rows]
    news = [r["head_median"] for r in rows]
    ys = range(len(rows))
    ax.barh([y + 0.2 for y in ys], olds, height=0.4, color="#999999", label=f"before ({base})")
    ax.barh([y - 0.2 for y in ys], news, height=0.4, color="#b4461b", label=f"after ({head})")
    for y, (o, n) in enumerate(zip(olds, news, strict=True)):
        ax.text(o, y + 0.2, f" {o:,.0f}", va="center", fontsize=8)
        ax.text(n, y - 0.2, f" {n:,.0f} ({n / o:.2f}x)" if o else f" {n:,.0f}", va="center", fontsize=8)
    ax.set_yticks(list(ys), labels)
    ax.invert_yaxis()
    ax.set_xlabel("median of the runs, per second (orders, cycles or writes)")
    ax.set_title(f"A/B in one sitting: {name}", fontsize=10)
    ax.margins(x=0.25)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = OUT / f"{name}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", required=True, help="git revision to compare the working tree with")
    parser.add_argument("--only", required=True, help="scenario names for bench/run.py (comma-separated)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    base_rev = _git("rev-parse", "--short", args.base)
    head_rev = _git("rev-parse", "--short", "HEAD") + ("+dirty" if _git("status", "--porcelain") else "")
    name = args.name or f"{base_rev}-vs-{head_rev.replace('+', '-')}"
    tmp = Path(tempfile.mkdtemp(prefix="bazaar-ab-"))
    worktree = tmp / "base"
    _git("worktree", "add", "--detach", str(worktree), base_rev)
    # The working tree's results are put back afterwards: an A/B is not a published sitting.
    saved = tmp / "results"
    shutil.copytree(ROOT / "bench" / "results", saved)
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "head": []}
    try:
        for n in range(args.rounds):
            # ABBA: the order flips every round, so a host getting busier (or quieter) during the sitting does not
            # favour the side that always runs first.
            order = (("base", worktree), ("head", ROOT))
            for side, root in order if n % 2 == 0 else order[::-1]:
                print(f"== round {n + 1}: {side} ({base_rev if side == 'base' else head_rev})", flush=True)
                result = _run_side(root, args.only, side == "base", args.duration)
                runs[side].append({"at": time.strftime("%H:%M:%S"), "scenarios": result})
                for scenario, out in result.items():
                    print(
                        f"   {scenario}: {out.get('app', {}).get('rps')} (cpu probe {out.get('cpu_probe_s')} s)"
                    )
    finally:
        for child in (ROOT / "bench" / "results").iterdir():
            if child.is_file():
                child.unlink()
        for child in saved.iterdir():
            if child.is_file():
                shutil.copy2(child, ROOT / "bench" / "results" / child.name)
        _git("worktree", "remove", "--force", str(worktree))
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for scenario in sorted({s for r in runs["head"] for s in r["scenarios"]}):
        olds = [r["scenarios"][scenario]["app"]["rps"] for r in runs["base"] if scenario in r["scenarios"]]
        news = [r["scenarios"][scenario]["app"]["rps"] for r in runs["head"] if scenario in r["scenarios"]]
        if not olds or not news:
            continue
        b, h = statistics.median(olds), statistics.median(news)
        paired = [round(hr / br, 3) for br, hr in zip(olds, news, strict=False) if br]
        rows.append(
            {
                "scenario": scenario,
                "unit": runs["head"][0]["scenarios"][scenario].get("unit", "requests/s"),
                "base_runs": olds,
                "head_runs": news,
                "base_median": b,
                "head_median": h,
                "ratio": round(h / b, 3) if b else None,
                # Round by round (the two sides ran minutes apart): the median of these is the paired figure.
                "round_ratios": paired,
                "paired_ratio": round(statistics.median(paired), 3) if paired else None,
            }
        )
    OUT.mkdir(parents=True, exist_ok=True)
    report = {
        "name": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "base": base_rev,
        "head": head_rev,
        "only": args.only,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "database": "postgresql" if "postgres" in os.environ.get("DATABASE_URL", "") else "sqlite",
        "cache": "redis" if os.environ.get("REDIS_URL") else "locmem",
        "summary": rows,
        "runs": runs,
    }
    (OUT / f"{name}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    _figure(name, rows, base_rev, head_rev)
    for row in rows:
        print(
            f"{row['scenario']:32} {row['base_median']:>10,.1f} -> {row['head_median']:>10,.1f}  ({row['ratio']}x, paired {row['paired_ratio']}x)"
        )
    print(f"wrote {OUT / (name + '.json')} and .png")


if __name__ == "__main__":
    main()
