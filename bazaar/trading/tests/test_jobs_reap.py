"""Import jobs never stuck: a run whose process died is failed with the reason and its upload deleted; uploads of
finished jobs and orphaned files are deleted after their time (bazaar.core.jobs, services.import_jobs_reap)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from bazaar.core import jobs
from bazaar.trading import services
from bazaar.trading.models import ImportJob

pytestmark = pytest.mark.django_db


def _dead_worker() -> str:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return f"{socket.gethostname()}:{proc.pid}"


def _running(tmp_path: Path, *, worker: str, beat_seconds_ago: int) -> ImportJob:
    upload = tmp_path / f"{worker.replace(':', '-')}-{beat_seconds_ago}.csv"
    upload.write_bytes(b"id,firstName,lastName,dateOfBirth\n" * 1000)
    return ImportJob.objects.create(
        kind="trainers",
        state=ImportJob.State.RUNNING,
        path=str(upload),
        size=upload.stat().st_size,
        worker=worker,
        heartbeat_at=timezone.now() - dt.timedelta(seconds=beat_seconds_ago),
    )


@pytest.fixture(autouse=True)
def _import_dir(settings: Any, tmp_path: Path) -> None:
    settings.TRADING_IMPORT_DIR = str(tmp_path)
    settings.JOBS_STALE_SECONDS = 120


def test_a_run_whose_process_died_is_failed_and_its_upload_deleted(
    tmp_path: Path, api_client: Any, make_user: Any, token_for: Any
) -> None:
    job = _running(tmp_path, worker=_dead_worker(), beat_seconds_ago=300)
    # Read through the API: the read is also the check (no beat runs in the default no-broker mode).
    token = token_for(make_user("reaper", is_staff=True))
    r = api_client.call("GET", f"/api/trading/import/jobs/{job.pk}", token=token)
    assert r.status_code == 200
    body = r.json()
    assert body["state"] == "failed"
    assert body["errors"]["code"] == "worker_lost"
    assert job.worker in body["errors"]["message"]
    assert not os.path.exists(job.path)
    job.refresh_from_db()
    assert job.finished_at is not None


def test_live_or_recent_runs_are_left_alone(tmp_path: Path) -> None:
    alive = _running(tmp_path, worker=jobs.worker_id(), beat_seconds_ago=300)  # this process: alive
    recent = _running(tmp_path, worker=_dead_worker(), beat_seconds_ago=30)  # heartbeat within 120 s
    elsewhere = _running(tmp_path, worker="another-host:1", beat_seconds_ago=60)
    assert services.import_jobs_reap() == {"failed": 0, "files_deleted": 0}
    for job in (alive, recent, elsewhere):
        job.refresh_from_db()
        assert job.state == ImportJob.State.RUNNING
        assert os.path.exists(job.path)
    silent_elsewhere = _running(tmp_path, worker="another-host:1", beat_seconds_ago=600)
    assert services.import_jobs_reap()["failed"] == 1
    silent_elsewhere.refresh_from_db()
    assert silent_elsewhere.state == ImportJob.State.FAILED


def test_uploads_of_finished_jobs_and_orphans_are_deleted_after_their_time(
    tmp_path: Path, settings: Any
) -> None:
    settings.JOBS_RETENTION_SECONDS = 3600
    old, kept, orphan, fresh_orphan = (tmp_path / n for n in ("old.csv", "kept.csv", "orphan.csv", "new.csv"))
    for f in (old, kept, orphan, fresh_orphan):
        f.write_bytes(b"x")
    long_ago = (timezone.now() - dt.timedelta(hours=2)).timestamp()
    os.utime(orphan, (long_ago, long_ago))
    os.utime(kept, (long_ago, long_ago))
    finished = ImportJob.objects.create(
        kind="trainers",
        state=ImportJob.State.SUCCEEDED,
        path=str(old),
        finished_at=timezone.now() - dt.timedelta(hours=2),
    )
    queued = ImportJob.objects.create(kind="trainers", state=ImportJob.State.QUEUED, path=str(kept))
    assert services.import_jobs_reap() == {"failed": 0, "files_deleted": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.csv", "new.csv"]
    finished.refresh_from_db()
    assert finished.path == ""
    queued.refresh_from_db()
    assert queued.state == ImportJob.State.QUEUED


def test_a_finished_run_does_not_overwrite_a_reaped_job(tmp_path: Path) -> None:
    """The reaper gave up on a run that was only slow: when it finishes, the job stays failed (its outcome was
    announced) and its upload is gone."""
    job = _running(tmp_path, worker=_dead_worker(), beat_seconds_ago=300)
    services.import_jobs_reap()
    job.refresh_from_db()
    assert job.state == ImportJob.State.FAILED
    assert services.import_job_run(job_id=job.pk).state == ImportJob.State.FAILED
