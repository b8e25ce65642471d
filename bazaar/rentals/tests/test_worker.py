"""The export task through a real broker and a real Celery worker (skipped without CELERY_BROKER_URL)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from bazaar.rentals import services
from bazaar.rentals.models import ExportJob


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_export_runs_on_a_real_worker(
    celery_worker_process: Any, make_title: Any, make_customer: Any
) -> None:
    for _ in range(3):
        services.rental_rent(customer_id=make_customer().pk, title_id=make_title().pk)
    job = services.export_start()  # enqueued on commit, executed by the worker process
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in ("done", "failed"):
            break
        time.sleep(0.2)
    assert job.status == "done", job.error
    assert (job.done, job.total) == (3, 3)
    assert len((Path(settings.MEDIA_ROOT) / job.file).read_text().splitlines()) == 4
    assert ExportJob.objects.count() == 1
