"""The public catalogue pages and the WSGI fast path serving their cached bytes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from bazaar.core.testing import fast_path_only
from bazaar.rentals import services

pytestmark = pytest.mark.django_db


def _wsgi_get(path: str, query: str = "", cookie: str = "") -> tuple[str, dict[str, str], bytes] | None:
    """Ask the fast path alone (no Django behind it): None when it would pass the request on."""
    return fast_path_only(path, QUERY_STRING=query, HTTP_COOKIE=cookie)


def test_catalogue_page_lists_titles_with_availability(client: Client, make_title: Any) -> None:
    make_title(title="The Hobbit", author="J. R. R. Tolkien", copies=3)
    make_title(title="Dune", author="Frank Herbert", kind="fiction", copies=1)
    r = client.get("/rentals/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "The Hobbit" in html
    assert "Dune" in html
    assert "<strong>3</strong> of 3" in html
    r = client.get("/rentals/?q=tolkien")
    assert "The Hobbit" in r.content.decode()
    assert "Dune" not in r.content.decode()


def test_fast_path_serves_the_view_bytes_and_drops_them_after_a_rent(
    client: Client, make_title: Any, make_customer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        title = make_title(title="The Hobbit", copies=1)
    assert _wsgi_get("/rentals/") is None  # nothing cached yet: Django answers
    page = client.get("/rentals/")
    served = _wsgi_get("/rentals/")
    assert served is not None
    assert served[0] == "200 OK"
    assert served[2] == page.content
    assert served[1]["X-Cache"] == "hit"
    assert served[1]["ETag"] == page["ETag"]
    assert _wsgi_get("/rentals/", cookie="sessionid=abc") is None
    assert _wsgi_get("/rentals/", query="q=x") is None
    client.get(f"/rentals/titles/{title.pk}/")
    assert _wsgi_get(f"/rentals/titles/{title.pk}/") is not None
    client.get("/api/rentals/titles")
    api_hit = _wsgi_get("/api/rentals/titles")
    assert api_hit is not None
    assert b'"copies_available":1' in api_hit[2]
    with django_capture_on_commit_callbacks(execute=True):
        services.rental_rent(customer_id=make_customer().pk, title_id=title.pk)
    assert _wsgi_get("/rentals/") is None
    assert _wsgi_get("/api/rentals/titles") is None
    assert _wsgi_get(f"/rentals/titles/{title.pk}/") is None
    assert (
        "<strong>" not in client.get(f"/rentals/titles/{title.pk}/").content.decode().split("availability")[1]
    )


def test_title_page_404(client: Client) -> None:
    r = client.get("/rentals/titles/999999/")
    assert r.status_code == 404
    assert "We could not find that page" in r.content.decode()


def test_signed_in_visitor_gets_fresh_private_page(client: Client, make_user: Any, make_title: Any) -> None:
    make_title(title="Solaris")
    client.force_login(make_user("reader"))
    r = client.get("/rentals/")
    assert r.status_code == 200
    assert r["Cache-Control"] == "private, no-store"
    assert "reader" in r.content.decode()


def test_home_links_the_catalogue(client: Client) -> None:
    assert 'href="/rentals/"' in client.get("/").content.decode()


def test_search_cache_keys_are_short_safe_and_never_collide() -> None:
    """Whatever a visitor searches for, the catalogue's cache entry name stays short and made of safe characters,
    and a hashed search can never be mistaken for a plain one."""
    from bazaar.rentals.cache import list_variant

    plain = list_variant("html", "  Tolkien ", 0, 0)
    assert plain == "html.0.0.tolkien"
    spaced = list_variant("html", "Le   Guin", 0, 0)
    assert spaced == list_variant("html", "le guin", 0, 0)  # normalised first, then hashed
    hashed = [spaced, list_variant("json", "x" * 500, 50, 0), list_variant("json", "ünïcode\x00;DROP", 50, 0)]
    for name in hashed:
        search = name.split(".", 3)[3]
        assert search.startswith("_")
        assert len(search) == 21
        assert all(c.isalnum() or c == "_" for c in search)
    # A plain search that looks like a hash is still plain: the two spaces never meet.
    lookalike = hashed[0].split(".", 3)[3][1:]
    assert list_variant("html", lookalike, 0, 0) != spaced
