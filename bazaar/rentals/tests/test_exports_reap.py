"""Exports never stuck: a run whose process died is failed with the reason and its partial file deleted; files of
finished exports are deleted after JOBS_RETENTION_SECONDS (services.exports_reap)."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from bazaar.core import jobs
from bazaar.rentals import services
from bazaar.rentals.models import ExportJob, ExportStatus
from bazaar.rentals.services.exports import export_path

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.JOBS_STALE_SECONDS = 120
    settings.JOBS_RETENTION_SECONDS = 3600


def _dead_worker() -> str:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return f"{socket.gethostname()}:{proc.pid}"


def _job(
    status: str, *, worker: str = "", beat_seconds_ago: int = 0, finished_hours_ago: int = 0
) -> ExportJob:
    now = timezone.now()
    job = ExportJob.objects.create(
        status=status,
        file=f"rentals/exports/job-{status}-{beat_seconds_ago}-{finished_hours_ago}.csv",
        worker=worker,
        heartbeat_at=now - dt.timedelta(seconds=beat_seconds_ago),
        finished_at=now - dt.timedelta(hours=finished_hours_ago) if finished_hours_ago else None,
    )
    path = export_path(job) if status != ExportStatus.RUNNING else export_path(job).with_suffix(".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("rental_id\n")
    return job


def test_a_dead_export_is_failed_with_the_reason_when_read(
    api_client: Any, make_user: Any, token_for: Any
) -> None:
    job = _job(ExportStatus.RUNNING, worker=_dead_worker(), beat_seconds_ago=600)
    token = token_for(make_user("desk-staff", is_staff=True))
    r = api_client.call("GET", f"/api/rentals/exports/{job.pk}", token=token)
    assert r.status_code == 200
    assert r.json()["status"] == "failed"
    assert r.json()["error"].startswith(f"The process writing this export ({job.worker}) stopped")
    assert not export_path(job).with_suffix(".part").exists()


def test_live_exports_stay_and_old_files_go() -> None:
    live = _job(ExportStatus.RUNNING, worker=jobs.worker_id(), beat_seconds_ago=600)
    recent = _job(ExportStatus.RUNNING, worker=_dead_worker(), beat_seconds_ago=10)
    old = _job(ExportStatus.DONE, finished_hours_ago=2)
    new = _job(ExportStatus.DONE, finished_hours_ago=0)
    assert services.exports_reap() == {"failed": 0, "files_deleted": 1}
    assert not export_path(old).exists()
    assert export_path(new).exists()
    for job in (live, recent):
        job.refresh_from_db()
        assert job.status == ExportStatus.RUNNING
