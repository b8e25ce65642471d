"""A task enqueued by the web process is executed by a real Celery worker through the real broker."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from bazaar.core import cache
from bazaar.core.tasks import ping


@pytest.mark.worker
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_real_worker_runs_enqueued_task(celery_worker_process: Any) -> None:
    token = uuid.uuid4().hex
    ping.delay(token, "pong")
    cache.set_prefix(celery_worker_process.cache_prefix)  # read where the worker wrote
    key = cache.raw_key("core", "ping", token)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and cache.get_raw(key) is None:
        time.sleep(0.2)
    assert cache.get_raw(key) == b"pong"


@pytest.mark.django_db  # the task writes to the cache; a new Redis connection checks the ledger in the database
def test_eager_without_broker(settings: Any) -> None:
    if settings.CELERY_BROKER_URL:
        pytest.skip("a broker is configured")
    assert ping.delay("eager", "yes").get() == "yes"
