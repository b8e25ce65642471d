"""The one job lifecycle (bazaar.core.jobs over bazaar.core.models.Job): claim, heartbeat, finish, fail, dead-run
detection and reaping, retention. Run on a job model of the tests' own with a vocabulary neither app uses, so
nothing here depends on an app; the clock is a controlled one (``now=`` and a patched ``timezone.now``), never a
sleep. The apps' own behaviour stays covered by bazaar/rentals/tests/test_exports_reap.py and
bazaar/trading/tests/test_jobs_reap.py."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, models
from django.utils import timezone

from bazaar.core import jobs
from bazaar.core.models import Job, Lifecycle

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
STALE = 120


@pytest.fixture(scope="module")
def sample(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Any]:
    """A concrete job model, its table created for this module only and its registration removed afterwards
    (so the model inventories other tests take never see it)."""

    class SampleJob(Job):
        lifecycle = Lifecycle(field="phase", waiting="new", running="busy", succeeded="ok", failed="bad")

        phase = models.CharField(
            max_length=8, default="new", choices=[(v, v) for v in ("new", "busy", "ok", "bad")]
        )
        note = models.CharField(max_length=100, blank=True, default="")
        rows = models.IntegerField(default=0)

        class Meta(Job.Meta):
            app_label = "core"

    with django_db_blocker.unblock(), connection.schema_editor() as editor:
        editor.create_model(SampleJob)
    try:
        yield SampleJob
    finally:
        with django_db_blocker.unblock(), connection.schema_editor() as editor:
            editor.delete_model(SampleJob)
        del apps.all_models["core"]["samplejob"]
        apps.clear_cache()


class Clock:
    """``timezone.now`` under the test's control."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def move(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Clock:
    settings.JOBS_STALE_SECONDS = STALE
    settings.JOBS_RETENTION_SECONDS = 3600
    c = Clock()
    monkeypatch.setattr(timezone, "now", c)
    return c


def _dead_worker() -> str:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return f"{socket.gethostname()}:{proc.pid}"


def _state(model: Any, pk: int) -> dict[str, Any]:
    return dict(
        model._default_manager.filter(pk=pk).values(
            "phase", "note", "rows", "worker", "heartbeat_at", "finished_at"
        )[0]
    )


@pytest.mark.django_db
def test_claim_moves_a_waiting_job_to_running_on_this_worker_once(sample: Any, clock: Clock) -> None:
    job = sample._default_manager.create()
    assert job.job_state == "new"
    assert jobs.job_claim(sample, pk=job.pk, rows=7) is True
    assert _state(sample, job.pk) == {
        "phase": "busy",
        "note": "",
        "rows": 7,
        "worker": jobs.worker_id(),
        "heartbeat_at": T0,
        "finished_at": None,
    }
    clock.move(5)
    before = _state(sample, job.pk)
    assert jobs.job_claim(sample, pk=job.pk, rows=9) is False  # already running: a duplicate delivery
    assert jobs.job_claim(sample, pk=job.pk + 1000) is False  # missing
    assert _state(sample, job.pk) == before
    # A caller that reruns a running job says so.
    assert jobs.job_claim(sample, pk=job.pk, from_states=["new", "busy"], rows=9) is True
    assert _state(sample, job.pk)["heartbeat_at"] == T0 + dt.timedelta(seconds=5)


@pytest.mark.django_db
def test_heartbeat_refreshes_a_running_job_only(sample: Any, clock: Clock) -> None:
    job = sample._default_manager.create()
    assert jobs.job_beat(sample, pk=job.pk, rows=1) is False  # not claimed yet: untouched
    assert _state(sample, job.pk)["heartbeat_at"] is None
    jobs.job_claim(sample, pk=job.pk)
    assert jobs.job_beat(sample, pk=job.pk, now=T0 + dt.timedelta(seconds=30), rows=500) is True
    got = _state(sample, job.pk)
    assert (got["phase"], got["rows"], got["heartbeat_at"]) == ("busy", 500, T0 + dt.timedelta(seconds=30))
    clock.move(60)
    assert jobs.job_beat(sample, pk=job.pk) is True  # the clock's now by default
    assert _state(sample, job.pk)["heartbeat_at"] == T0 + dt.timedelta(seconds=60)


@pytest.mark.django_db
def test_finish_and_fail_end_a_running_job_once(sample: Any, clock: Clock) -> None:
    ok, bad = sample._default_manager.create(), sample._default_manager.create()
    assert jobs.job_finish(sample, pk=ok.pk, rows=3) is False  # waiting: not a run to end
    assert jobs.job_fail(sample, pk=bad.pk, note="x") is False
    assert _state(sample, ok.pk)["phase"] == _state(sample, bad.pk)["phase"] == "new"
    for job in (ok, bad):
        jobs.job_claim(sample, pk=job.pk)
    clock.move(10)
    assert jobs.job_finish(sample, pk=ok.pk, rows=3) is True
    assert jobs.job_fail(sample, pk=bad.pk, note="disk full") is True
    got_ok, got_bad = _state(sample, ok.pk), _state(sample, bad.pk)
    assert (got_ok["phase"], got_ok["rows"], got_ok["finished_at"]) == (
        "ok",
        3,
        T0 + dt.timedelta(seconds=10),
    )
    assert (got_bad["phase"], got_bad["note"], got_bad["finished_at"]) == (
        "bad",
        "disk full",
        T0 + dt.timedelta(seconds=10),
    )
    # An ended run is never ended again (a run the reaper failed does not turn into a success).
    clock.move(10)
    assert jobs.job_finish(sample, pk=bad.pk, rows=99) is False
    assert jobs.job_fail(sample, pk=ok.pk, note="late") is False
    assert _state(sample, ok.pk) == got_ok
    assert _state(sample, bad.pk) == got_bad


@pytest.mark.django_db
def test_a_run_is_dead_only_when_its_heartbeat_is_stale_and_nothing_shows_it_alive(
    sample: Any, clock: Clock
) -> None:
    dead = sample(phase="busy", worker=_dead_worker(), heartbeat_at=T0)
    elsewhere = sample(phase="busy", worker="another-host:1", heartbeat_at=T0)
    this_process = sample(phase="busy", worker=jobs.worker_id(), heartbeat_at=T0)
    never_beat = sample(phase="busy", worker="another-host:1", heartbeat_at=None)
    just_fresh = T0 + dt.timedelta(seconds=STALE - 1)
    just_stale = T0 + dt.timedelta(seconds=STALE + 1)
    assert jobs.stale_before(just_stale) == T0 + dt.timedelta(seconds=1)
    assert not jobs.is_dead(dead, now=just_fresh)
    assert not jobs.is_dead(elsewhere, now=just_fresh)
    assert jobs.is_dead(dead, now=just_stale)
    assert jobs.is_dead(elsewhere, now=just_stale)  # another host: the heartbeat decides
    assert jobs.is_dead(never_beat, now=T0)
    assert not jobs.is_dead(this_process, now=just_stale)  # its process is alive
    assert not jobs.is_dead(elsewhere, now=just_stale, lock_held=lambda: True)  # the app's own sign of life
    clock.move(STALE + 1)
    assert jobs.is_dead(dead)  # the clock's now by default


@pytest.mark.django_db
def test_reap_fails_dead_runs_only_and_returns_them(sample: Any, clock: Clock) -> None:
    mgr = sample._default_manager
    dead = mgr.create(phase="busy", worker=_dead_worker(), heartbeat_at=T0)
    alive = mgr.create(phase="busy", worker=jobs.worker_id(), heartbeat_at=T0)
    recent = mgr.create(phase="busy", worker="another-host:1", heartbeat_at=T0 + dt.timedelta(seconds=100))
    locked = mgr.create(phase="busy", worker="another-host:2", heartbeat_at=T0)
    waiting = mgr.create(phase="new")
    clock.move(STALE + 10)
    reasons: list[int] = []

    def failure(job: Any) -> dict[str, Any]:
        reasons.append(job.pk)
        return {"note": f"lost {job.worker}"}

    reaped = jobs.jobs_reap(sample, failure=failure, lock_held=lambda job: job.pk == locked.pk)
    assert [j.pk for j in reaped] == reasons == [dead.pk]
    assert reaped[0].heartbeat_at == T0  # as it was read
    got = _state(sample, dead.pk)
    assert (got["phase"], got["note"], got["finished_at"]) == ("bad", f"lost {dead.worker}", clock.now)
    for job in (alive, recent, locked):
        assert _state(sample, job.pk)["phase"] == "busy"
    assert _state(sample, waiting.pk)["phase"] == "new"
    # Only the one job asked about.
    clock.move(100)
    assert [j.pk for j in jobs.jobs_reap(sample, pk=recent.pk, failure=failure)] == [recent.pk]
    assert _state(sample, locked.pk)["phase"] == "busy"


@pytest.mark.django_db
def test_reap_never_overwrites_a_run_that_beat_meanwhile(sample: Any, clock: Clock) -> None:
    job = sample._default_manager.create(phase="busy", worker="another-host:1", heartbeat_at=T0)
    clock.move(STALE + 10)

    def comes_back(j: Any) -> bool:
        jobs.job_beat(sample, pk=j.pk)  # the run beats between the reaper's read and its update
        return False

    assert jobs.jobs_reap(sample, failure=lambda j: {"note": "lost"}, lock_held=comes_back) == []
    got = _state(sample, job.pk)
    assert (got["phase"], got["note"], got["heartbeat_at"]) == ("busy", "", clock.now)


@pytest.mark.django_db
def test_expired_jobs_are_finished_ones_past_retention(sample: Any, clock: Clock) -> None:
    mgr = sample._default_manager
    old_ok = mgr.create(phase="ok", finished_at=T0)
    old_bad = mgr.create(phase="bad", finished_at=T0)
    mgr.create(phase="ok", finished_at=T0 + dt.timedelta(seconds=1800))
    mgr.create(phase="busy", heartbeat_at=T0)
    mgr.create(phase="new")
    now = T0 + dt.timedelta(seconds=3600 + 1)
    assert sorted(j.pk for j in jobs.jobs_expired(sample, now=now)) == [old_ok.pk, old_bad.pk]
    assert list(jobs.jobs_expired(sample, now=T0 + dt.timedelta(seconds=3600))) == []


def test_every_job_model_names_its_vocabulary_in_its_state_field() -> None:
    """Each concrete Job (the apps' export and import jobs) has a lifecycle whose field exists, holds exactly the
    four named values as choices, and starts waiting: core moves jobs only through those values."""
    found = [m for m in apps.get_models() if issubclass(m, Job)]
    assert found, "no job models"
    for model in found:
        lc = model.lifecycle
        field = model._meta.get_field(lc.field)
        assert isinstance(field, models.CharField)
        assert {value for value, _ in field.choices or []} == {
            lc.waiting,
            lc.running,
            lc.succeeded,
            lc.failed,
        }
        assert field.default == lc.waiting, model


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_of_concurrent_claims_exactly_one_wins(sample: Any) -> None:
    """Real threads, each with its own connection, claim the same waiting job at once (PostgreSQL)."""
    job = sample._default_manager.create()
    n = 6
    start = threading.Barrier(n)
    won: list[bool] = []

    def claim() -> None:
        from django.db import connection as own

        try:
            start.wait()
            won.append(jobs.job_claim(sample, pk=job.pk))
        finally:
            own.close()

    threads = [threading.Thread(target=claim) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(won) == [False] * (n - 1) + [True]
    assert _state(sample, job.pk)["phase"] == "busy"
