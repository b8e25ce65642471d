"""The Celery app. Without CELERY_BROKER_URL tasks run eagerly in-process (the embedded default)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_failure, task_success

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bazaar.config.settings.base")

app = Celery("bazaar")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_success.connect
def _count_success(sender: Any = None, **_: Any) -> None:
    from bazaar.core.metrics import TASKS

    TASKS.labels(task=getattr(sender, "name", "?"), outcome="success").inc()


@task_failure.connect
def _count_failure(sender: Any = None, **_: Any) -> None:
    from bazaar.core.metrics import TASKS

    TASKS.labels(task=getattr(sender, "name", "?"), outcome="failure").inc()
