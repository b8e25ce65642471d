"""Rentals cache scopes and variants (through bazaar.core.cache only).

* ``CATALOGUE`` holds every title-list variant (HTML page, JSON pages, searches): availability counts change on
  every rent, return and stock change, so each of those bumps it.
* ``title_scope(id)`` holds one title's detail (HTML and JSON).

The fast path (apps.py) and the views name entries with the same functions below, so they serve the same bytes.
"""

from __future__ import annotations

import hashlib
import re

from bazaar.core import cache
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


def invalidate_title(*title_ids: int) -> None:
    """A title's copies or availability changed: drop the catalogue and its detail, after commit."""
    cache.invalidate(CATALOGUE, *(title_scope(t) for t in sorted(set(title_ids))))


def invalidate_catalogue() -> None:
    cache.invalidate(CATALOGUE)


def default_json_variant() -> str:
    """The JSON title list with no query string (what the fast path can serve)."""
    from django.conf import settings

    return list_variant("json", None, int(settings.API_DEFAULT_LIMIT), 0)
