"""Prometheus metrics shared by every app.

With several worker processes set ``PROMETHEUS_MULTIPROC_DIR`` (the run scripts do) so /metrics aggregates all
workers; otherwise the process-local registry is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("bazaar_http_requests_total", "HTTP requests served", ["method", "status"])
LATENCY = Histogram(
    "bazaar_http_request_duration_seconds",
    "Time spent in Django per request",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CACHE_EVENTS = Counter(
    "bazaar_cache_events_total",
    "core.cache events: hit, miss, build, wait, invalidation, fail_open",
    ["event", "app"],
)
GROUP_COMMITS = Counter(
    "bazaar_group_commits_total", "Transactions of a core.groupcommit group commit (one per group)", ["name"]
)
GROUP_COMMIT_ITEMS = Counter(
    "bazaar_group_commit_items_total", "Writes committed by a core.groupcommit group commit", ["name"]
)
TASKS = Counter("bazaar_tasks_total", "Celery tasks by name and outcome", ["task", "outcome"])


def render() -> tuple[bytes, str]:
    """Return the exposition text and its content type, aggregated over workers when multiprocess."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        collect: Callable[[CollectorRegistry], object] = (
            multiprocess.MultiProcessCollector
        )  # untyped upstream
        collect(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
