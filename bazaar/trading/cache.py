"""Trading's cache scopes (through bazaar.core.cache).

Two coarse scopes: every trainer read (JSON lists, details, the public HTML list) lives under ``TRAINERS`` and
every pokemon read (lists, details, history) under ``POKEMON``. A write bumps the scope it touches once, after
commit. Per-pokemon scopes would not survive an import: a million-row upsert cannot bump a million counters,
and a pokemon list filtered by owner changes whenever any pokemon changes hands anyway.
"""

from __future__ import annotations

from bazaar.core import cache
from bazaar.core.cache import Scope

TRAINERS = Scope("trading", "trainers", "all")
POKEMON = Scope("trading", "pokemon", "all")
PAGE_VARIANT = "html:p{page}"


def invalidate_trainers() -> None:
    """Trainer data changed (also drops pokemon reads: they show the owner's id)."""
    cache.invalidate(TRAINERS, POKEMON)


def invalidate_pokemon() -> None:
    cache.invalidate(POKEMON)
