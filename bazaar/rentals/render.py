"""Builders of the public catalogue's bytes (JSON and HTML) and their cached lookups.

The API, the pages and the WSGI fast path share these entries, so a write's invalidation covers all of them.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest
from django.template.loader import render_to_string

from bazaar.core.cache import Cached
from bazaar.core.pagination import clamp
from bazaar.rentals import cache, conf, selectors
from bazaar.rentals.schemas import TitleOut

HTML_LIMIT = 200


def _dumps(data: Any) -> bytes:
    return json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def title_dict(title: Any) -> dict[str, Any]:
    return TitleOut.model_validate(title).model_dump(mode="json")


def title_list_json(q: str | None, limit: int, offset: int) -> bytes:
    qs = selectors.title_search(q)
    items = [title_dict(t) for t in qs[offset : offset + limit]]
    count = qs.count() if (offset or len(items) == limit) else offset + len(items)
    return _dumps(
        {"count": count, "limit": limit, "offset": offset, "q": cache.normalize_query(q), "items": items}
    )


def cached_title_list_json(q: str | None, limit: int | None, offset: int | None) -> Cached:
    """The JSON title list page (validates limit/offset: ValidationFailed ``invalid_limit``)."""
    lim, off = clamp(limit, offset)
    nq = cache.normalize_query(q)
    return cache.catalogue().get_or_build(
        cache.CATALOGUE,
        cache.list_variant("json", nq, lim, off),
        lambda: title_list_json(nq, lim, off),
        ttl=conf.catalogue_ttl(),
    )


def title_detail_json(title_id: int) -> bytes:
    return _dumps(title_dict(selectors.title_get(title_id=title_id)))


def cached_title_json(title_id: int) -> Cached:
    """One title's JSON (NotFound ``title_not_found``; a missing title is never cached)."""
    return cache.title_surface().get_or_build(
        cache.title_scope(title_id), "json", lambda: title_detail_json(title_id), ttl=conf.catalogue_ttl()
    )


def catalogue_html(request: HttpRequest | None, q: str | None) -> bytes:
    nq = cache.normalize_query(q)
    titles = list(selectors.title_search(nq)[:HTML_LIMIT])
    return render_to_string(
        "rentals/catalogue.html",
        {"titles": titles, "q": nq, "limit": HTML_LIMIT},
        request=request,
    ).encode()


def cached_catalogue_html(request: HttpRequest | None, q: str | None) -> Cached:
    nq = cache.normalize_query(q)
    return cache.catalogue().get_or_build(
        cache.CATALOGUE,
        cache.list_variant("html", nq, 0, 0),
        lambda: catalogue_html(None, nq),  # shared bytes: never render one visitor's messages or session
        ttl=conf.catalogue_ttl(),
    )


def title_html(request: HttpRequest | None, title_id: int) -> bytes:
    title = selectors.title_get(title_id=title_id)
    return render_to_string("rentals/title.html", {"t": title}, request=request).encode()


def cached_title_html(request: HttpRequest | None, title_id: int) -> Cached:
    return cache.title_surface().get_or_build(
        cache.title_scope(title_id), "html", lambda: title_html(None, title_id), ttl=conf.catalogue_ttl()
    )
