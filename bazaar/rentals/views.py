"""Public catalogue pages. Anonymous visits are served from cached bytes (and by the fast path before Django);
signed-in visitors get a fresh render because the page header names them."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from bazaar.core.errors import NotFound
from bazaar.core.http import bytes_response
from bazaar.rentals import cache, render


def _private(body: bytes) -> HttpResponse:
    response = HttpResponse(body, content_type=cache.HTML)
    response["Cache-Control"] = "private, no-cache"
    return response


@require_GET
def catalogue(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")
    if request.user.is_authenticated:
        return _private(render.catalogue_html(request, q))
    return bytes_response(request, render.cached_catalogue_html(request, q), content_type=cache.HTML)


@require_GET
def title_detail(request: HttpRequest, title_id: int) -> HttpResponse:
    try:
        if request.user.is_authenticated:
            return _private(render.title_html(request, title_id))
        return bytes_response(request, render.cached_title_html(request, title_id), content_type=cache.HTML)
    except NotFound:
        raise Http404("No such title.")
