"""Core's one table, the cache ledger (what the cache may be trusted with, kept where the truth is), and the
abstract base of the apps' background jobs (``Job``: its lifecycle is run by bazaar.core.jobs)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from django.conf import settings
from django.db import models


class CacheLedger(models.Model):
    """The durable side of cache freshness, one row per cache namespace (``BAZAAR_CACHE_PREFIX``).

    * ``lost`` counts invalidations that could not be delivered (the cache was down when a write committed);
      ``settled`` is how many of them an epoch bump has already covered. ``lost > settled`` means no process may
      serve from the cache before it bumps the epoch.
    * ``server_run`` is the run id of the Redis server whose contents were last settled. Any other run id (a
      restart, a restore from a snapshot, a failover to a replica) is settled with an epoch bump before the new
      server is used: its contents may predate writes that were delivered to the server it replaced.

    Written only by bazaar.core.cache.ledger (raw statements; no model signals, no ORM in the hot path).
    """

    namespace = models.CharField(max_length=100, primary_key=True)
    server_run = models.CharField(max_length=100, blank=True, default="")
    lost = models.BigIntegerField(default=0)
    settled = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "cache ledger"

    def __str__(self) -> str:
        return f"{self.namespace}: {self.lost - self.settled} unsettled"


@dataclasses.dataclass(frozen=True)
class Lifecycle:
    """A job model's state vocabulary: which field holds the state and which of its values mean waiting, running,
    succeeded and failed. The values are the app's own (they are its API and its table data); core only ever
    moves a job waiting → running → succeeded | failed through them (bazaar.core.jobs)."""

    field: str
    waiting: str
    running: str
    succeeded: str
    failed: str

    @property
    def finished(self) -> tuple[str, str]:
        return (self.succeeded, self.failed)


class Job(models.Model):
    """Abstract base of a background job with progress (rentals ``ExportJob``, trading ``ImportJob``): who asked,
    when, which process runs it (``worker``, host:pid), its heartbeat and when it finished. A subclass declares its
    state field itself (name, choices, default: waiting) and names it in ``lifecycle``; bazaar.core.jobs claims,
    beats, finishes, fails and reaps it. Abstract: each app keeps its own table."""

    lifecycle: ClassVar[Lifecycle]

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    worker = models.CharField(max_length=200, blank=True, default="", help_text="host:pid of the run.")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Refreshed while the run is alive.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    @property
    def job_state(self) -> str:
        """The job's state, whatever its field is called."""
        return str(getattr(self, self.lifecycle.field))
