"""Core's one table: the cache ledger (what the cache may be trusted with, kept where the truth is)."""

from __future__ import annotations

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
