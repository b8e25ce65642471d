"""Kvstore JSON API (mounted under /api/ by bazaar.config.api)."""

from ninja import Router

router = Router(tags=["kvstore"])
