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
from bazaar.rentals.selectors import patrons

#: Titles per catalogue page.
PAGE_SIZE = 50


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


def catalogue_html(request: HttpRequest | None, q: str | None, page: int = 1) -> bytes:
    """One page of the catalogue (``PAGE_SIZE`` titles, best match first when searching), with paging links."""
    nq = cache.normalize_query(q)
    qs = selectors.title_search(nq)
    offset = (page - 1) * PAGE_SIZE
    titles = list(qs[offset : offset + PAGE_SIZE + 1])
    has_next = len(titles) > PAGE_SIZE
    titles = titles[:PAGE_SIZE]
    total = qs.count() if (page > 1 or has_next) else len(titles)
    return render_to_string(
        "rentals/catalogue.html",
        {
            "titles": titles,
            "q": nq,
            "page": page,
            "total": total,
            "first": offset + 1,
            "last": offset + len(titles),
            "next_page": page + 1 if has_next else None,
            "prev_page": page - 1 if page > 1 else None,
            "patron_link": request is not None and request.user.is_authenticated,
        },
        request=request,
    ).encode()


def cached_catalogue_html(request: HttpRequest | None, q: str | None, page: int = 1) -> Cached:
    """The shared catalogue page (page 1 under the name the fast path serves ``/rentals/`` from)."""
    nq = cache.normalize_query(q)
    return cache.catalogue().get_or_build(
        cache.CATALOGUE,
        cache.list_variant("html", nq, 0, (page - 1) * PAGE_SIZE),
        lambda: catalogue_html(
            None, nq, page
        ),  # shared bytes: never render one visitor's messages or session
        ttl=conf.catalogue_ttl(),
    )


def title_html(request: HttpRequest | None, title_id: int, patron: Any = None) -> bytes:
    """A title with each copy's status and due date and the hold queue's length. ``patron`` (a signed-in
    visitor's library card, private renderings only) adds the "Place hold" button."""
    title = selectors.title_get(title_id=title_id)
    shelf = patrons.title_copies(title_id=title_id)
    return render_to_string(
        "rentals/title.html",
        {
            "t": title,
            **shelf,
            "patron": patron,
            "signed_in": request is not None and request.user.is_authenticated,
        },
        request=request,
    ).encode()


def cached_title_html(request: HttpRequest | None, title_id: int) -> Cached:
    return cache.title_surface().get_or_build(
        cache.title_scope(title_id), "html", lambda: title_html(None, title_id), ttl=conf.catalogue_ttl()
    )
