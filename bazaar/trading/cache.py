"""Trading's cached surfaces, declared once (through bazaar.core.surfaces).

Two coarse scopes: every trainer read (JSON lists, details, the public HTML list) lives under ``TRAINERS`` and
every pokemon read (lists, details, history) under ``POKEMON``. Per-pokemon scopes would not survive an import: a
million-row upsert cannot bump a million counters, and a pokemon list filtered by owner changes whenever any
pokemon changes hands anyway. The declared dependencies make every writer of trainers, pokemon and ownership
history invalidate them (bazaar.core.freshness); the raw-SQL import names its models with ``freshness.changed``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from bazaar.core import freshness, surfaces
from bazaar.core.cache import Scope

TRAINERS = Scope("trading", "trainers", "all")
POKEMON = Scope("trading", "pokemon", "all")
PAGE_VARIANT = "html:p{page}"


def _resolve_trainer_page(match: re.Match[str], qs: str) -> tuple[Scope, str] | None:
    from bazaar.trading.views import page_number

    params = parse_qs(qs, keep_blank_values=True)
    if set(params) - {"page"} or len(params.get("page", [""])) > 1:
        return None  # unusual query: let Django answer it
    page = page_number(params.get("page", [""])[0])
    if page is None:
        return None
    return TRAINERS, PAGE_VARIANT.format(page=page)


def declare() -> None:
    """Called once from TradingConfig.ready()."""
    from bazaar.trading.models import OwnershipChange, Pokemon, Trainer

    surfaces.declare(
        "trading.trainer_page",
        app=TRAINERS.app,
        entity=TRAINERS.entity,
        path=r"^/trading/$",
        shared=True,
        content_type=surfaces.HTML,
        depends_on={Trainer: freshness.always(TRAINERS, POKEMON)},
        resolve=_resolve_trainer_page,
        # The edge caches the first page (no query string).
        edge_path=lambda scope: "/trading/",
    )
    surfaces.declare(
        "trading.trainers_json",
        app=TRAINERS.app,
        entity=TRAINERS.entity,
        path=r"^/api/trading/trainers(?:/[^/]+)?$",
        shared=True,
        content_type=surfaces.JSON,
        depends_on={Trainer: freshness.always(TRAINERS, POKEMON)},
    )
    surfaces.declare(
        "trading.pokemon_json",
        app=POKEMON.app,
        entity=POKEMON.entity,
        path=r"^/api/trading/(?:pokemon(?:/[^/]+(?:/history)?)?|trainers/[^/]+)$",
        shared=True,
        content_type=surfaces.JSON,
        depends_on={
            Trainer: freshness.always(TRAINERS, POKEMON),
            Pokemon: freshness.always(POKEMON),
            OwnershipChange: freshness.always(POKEMON),
        },
    )


def trainer_page() -> surfaces.Surface:
    return surfaces.get("trading.trainer_page")


def trainers_json() -> surfaces.Surface:
    return surfaces.get("trading.trainers_json")


def pokemon_json() -> surfaces.Surface:
    return surfaces.get("trading.pokemon_json")
