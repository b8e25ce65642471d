"""The purge task runs on a real Celery worker (RabbitMQ) against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from bazaar.kvstore import services, tasks
from bazaar.kvstore.models import Entry

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_purge_runs_on_a_real_worker() -> None:
    tenant = services.tenant_create(slug="acme")
    services.entry_set(tenant_id=tenant.pk, key="live", value=1)
    services.entry_set(tenant_id=tenant.pk, key="dead", value=1)
    Entry.objects.filter(key="dead").update(expires_at=timezone.now() - timedelta(seconds=1))
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DJANGO_SETTINGS_MODULE": "bazaar.config.settings.base",
    }
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bazaar.config",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "-n",
            f"kv-{os.getpid()}@%h",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        tasks.purge_expired.delay()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Entry.objects.filter(key="dead").exists():
            time.sleep(0.2)
        assert list(Entry.objects.values_list("key", flat=True)) == ["live"]
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
