"""The reachability check's evidence across processes (issue 19): ``make pytest`` runs the observing tests on xdist
workers and in a serial phase, so each process reports what it saw (``answers.Evidence``), the controller merges
its workers' and the second phase merges the first's (``--answers-carry``). The merge must never turn a missing
code into a pass, and must never decide on a narrowed run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.contract import answers
from tests.contract.answers import Evidence

ROOT = Path(__file__).resolve().parents[2]


def _every_answer() -> set[tuple[str, str, int, str]]:
    return {
        (method, path, status, code)
        for (method, path), statuses in answers.declared().items()
        for status, codes in statuses.items()
        for code in codes
    }


def _suite() -> set[str]:
    """One made-up observing test per observing file (node ids are only compared)."""
    return {f"{path}::test_{i}" for i, path in enumerate(answers.OBSERVERS)}


def _split(items: set[str]) -> tuple[set[str], set[str]]:
    ordered = sorted(items)
    return set(ordered[::2]), set(ordered[1::2])


def test_a_missing_code_survives_every_merge() -> None:
    every = _every_answer()
    checked = [k for k in sorted(every) if k[3] not in answers.FAULT_ONLY and k not in answers.RACE_ONLY]
    dropped = checked[len(checked) // 2]
    seen = every - {dropped}
    tests = _suite()
    left, right = _split(tests)
    gw0 = Evidence(observed=set(sorted(seen)[::2]), collected=tests, ran=left)
    gw1 = Evidence(observed=set(sorted(seen)[1::2]), collected=tests, ran=set(sorted(right)[1:]))
    serial = Evidence(collected=tests, ran={sorted(right)[0]})
    phase_one = Evidence.from_json(json.loads(json.dumps(gw0.merge(gw1).to_json())))
    merged = serial.merge(phase_one)
    assert merged.complete()
    assert merged.observed == seen
    assert answers.verdict(merged) == [" ".join(map(str, dropped))]
    assert answers.verdict(merged.merge(Evidence(observed={dropped}))) == []


def test_a_narrowed_or_failed_run_decides_nothing() -> None:
    tests = _suite()
    left, _ = _split(tests)
    seen = _every_answer()
    assert answers.verdict(Evidence(observed=seen, collected=tests, ran=tests)) == []
    # one phase alone, or a worker's share lost: a collected observing test did not run
    assert answers.verdict(Evidence(observed=seen, collected=tests, ran=left)) is None
    # a path or -k that never collected an observing file
    assert answers.verdict(Evidence(observed=seen, collected=left, ran=left)) is None
    # a failure anywhere (in either phase)
    assert answers.verdict(Evidence(observed=seen, collected=tests, ran=tests, failures=1)) is None
    # nothing at all (--collect-only, or an empty carry)
    assert answers.verdict(Evidence()) is None


def test_a_carried_phase_without_the_answers_fails_the_run(tmp_path: Path) -> None:
    """End to end through conftest.py: a second phase given a carry in which every observing test "ran" and no
    answer was seen fails and lists the unreached codes; re-saved, the carry is the merge."""
    carry = tmp_path / "carry.json"
    saved = tmp_path / "saved.json"
    tests = _suite()
    carry.write_text(json.dumps(Evidence(collected=tests, ran=tests).to_json()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:xdist",
            "-q",
            f"--answers-carry={carry}",
            f"--answers-save={saved}",
            f"{Path(__file__).relative_to(ROOT)}::test_a_narrowed_or_failed_run_decides_nothing",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "unreached error codes" in r.stdout
    assert "1 passed" in r.stdout
    assert Evidence.from_json(json.loads(saved.read_text())) == Evidence(collected=tests, ran=tests)
