"""The home page: what Bazaar is and a link to every part. Anonymous visits are served from cached bytes."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from bazaar.core import cache, surfaces
from bazaar.core.http import bytes_response

HOME_SCOPE = cache.Scope("core", "home", "page")


def _render_home(request: HttpRequest | None) -> bytes:
    return render_to_string("core/home.html", {}, request=request).encode()


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        response = HttpResponse(_render_home(request))
        response["Cache-Control"] = "private, no-store"
        return response
    # Shared bytes carry no visitor: rendered without the request (no messages, CSRF token or user name).
    cached = surfaces.get("core.home").get_or_build(HOME_SCOPE, "anon", lambda: _render_home(None))
    return bytes_response(request, cached, content_type="text/html; charset=utf-8")
