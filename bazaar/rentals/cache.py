"""Rentals cache scopes and variants (through bazaar.core.cache only).

* ``CATALOGUE`` holds every title-list variant (HTML page, JSON pages, searches): availability counts change on
  every rent, return and stock change, so each of those bumps it.
* ``title_scope(id)`` holds one title's detail (HTML and JSON).

The four surfaces (catalogue page and JSON list, title page and JSON) are declared once in :func:`declare`: their
fast-path routes, nginx edge paths and model dependencies (titles and copies) come from there, so every writer of
a title or a copy invalidates them (bazaar.core.freshness). The views name entries with the same functions below,
so they serve the same bytes as the fast path.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from bazaar.core import cache, freshness, surfaces
from bazaar.core.cache import Scope

APP = "rentals"
CATALOGUE = Scope(APP, "catalogue", "all")
HTML = "text/html; charset=utf-8"
JSON = "application/json"


def title_scope(title_id: int) -> Scope:
    return Scope(APP, "title", title_id)


_PLAIN = re.compile(r"[a-z0-9-]*")


def normalize_query(q: str | None) -> str:
    return " ".join((q or "").split()).lower()[:200]


def list_variant(kind: str, q: str | None, limit: int, offset: int) -> str:
    """Entry name for a title list: ``kind`` is 'html' or 'json'. A search that is long or holds anything but
    lowercase letters, digits and ``-`` is hashed: the key stays short and made of safe characters whatever the
    visitor typed."""
    nq = normalize_query(q)
    if len(nq) > 40 or not _PLAIN.fullmatch(nq):
        nq = "_" + hashlib.blake2b(nq.encode(), digest_size=10).hexdigest()  # "_": never a plain search
    return f"{kind}.{limit}.{offset}.{nq}"


def _title_scopes(title: Any) -> list[Scope]:
    return [CATALOGUE, title_scope(title.pk)]


def _copy_scopes(copy: Any) -> list[Scope]:
    return [CATALOGUE, title_scope(copy.title_id)]


def _title_page_scopes(row: Any) -> list[Scope]:
    """A rental (a copy's due date) or a hold (the queue's length): shown on the title's page."""
    return [title_scope(row.title_id)]


def declare() -> None:
    """Called once from RentalsConfig.ready(): the catalogue's cached surfaces."""
    from bazaar.rentals.models import Copy, Hold, Rental, Title

    depends = {Title: freshness.on(_title_scopes), Copy: freshness.on(_copy_scopes, moves=("title",))}
    # A title's page also shows each copy's due date and the hold queue's length.
    title_depends = {
        **depends,
        Rental: freshness.on(_title_page_scopes, moves=("title",)),
        Hold: freshness.on(_title_page_scopes, moves=("title",)),
    }
    surfaces.declare(
        "rentals.catalogue_page",
        app=APP,
        entity="catalogue",
        path=r"^/rentals/$",
        shared=True,
        content_type=HTML,
        depends_on=depends,
        resolve=lambda m, qs: None if qs else (CATALOGUE, list_variant("html", None, 0, 0)),
        edge_path=lambda scope: "/rentals/",
    )
    surfaces.declare(
        "rentals.catalogue_json",
        app=APP,
        entity="catalogue",
        path=r"^/api/rentals/titles$",
        shared=True,
        content_type=JSON,
        depends_on=depends,
        resolve=lambda m, qs: None if qs else (CATALOGUE, default_json_variant()),
        edge_path=lambda scope: "/api/rentals/titles",
    )
    surfaces.declare(
        "rentals.title_page",
        app=APP,
        entity="title",
        path=r"^/rentals/titles/(?P<id>[0-9]{1,18})/$",
        shared=True,
        content_type=HTML,
        depends_on=title_depends,
        resolve=lambda m, qs: None if qs else (title_scope(int(m["id"])), "html"),
        edge_path=lambda scope: f"/rentals/titles/{scope.id}/",
    )
    surfaces.declare(
        "rentals.title_json",
        app=APP,
        entity="title",
        path=r"^/api/rentals/titles/(?P<id>[0-9]{1,18})$",
        shared=True,
        content_type=JSON,
        depends_on=title_depends,
        resolve=lambda m, qs: None if qs else (title_scope(int(m["id"])), "json"),
        edge_path=lambda scope: f"/api/rentals/titles/{scope.id}",
    )


def catalogue() -> surfaces.Surface:
    return surfaces.get("rentals.catalogue_json")


def title_surface() -> surfaces.Surface:
    return surfaces.get("rentals.title_json")


def invalidate_title(*title_ids: int) -> None:
    """A title's copies or availability changed through raw SQL (rent, return): drop the catalogue and the title's
    pages, after commit. ORM writes of titles and copies are seen by the declared dependencies."""
    cache.invalidate(CATALOGUE, *(title_scope(t) for t in sorted(set(title_ids))))


def default_json_variant() -> str:
    """The JSON title list with no query string (what the fast path can serve)."""
    from django.conf import settings

    return list_variant("json", None, int(settings.API_DEFAULT_LIMIT), 0)
