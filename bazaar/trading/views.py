"""Public trainer list page. Anonymous visits are served from cached bytes (also by the WSGI fast path)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from bazaar.core.http import bytes_response
from bazaar.trading import cache as tcache
from bazaar.trading import selectors

MAX_PAGE = 100000


def page_number(raw: str | None) -> int | None:
    """The ``page`` query value as the fast path and the view both read it; None for anything unusual."""
    if raw is None or raw == "":
        return 1
    if not raw.isdigit() or len(raw) > 6:
        return None
    n = int(raw)
    return n if 1 <= n <= MAX_PAGE else None


def _render(request: HttpRequest | None, page: int) -> bytes:
    return render_to_string(
        "trading/trainers.html", selectors.trainer_html_page(page), request=request
    ).encode()


@require_GET
def trainer_list(request: HttpRequest) -> HttpResponse:
    page = page_number(request.GET.get("page")) or 1
    if request.user.is_authenticated or set(request.GET) - {"page"}:
        response = HttpResponse(_render(request, page))
        response["Cache-Control"] = "private, no-store"
        return response
    # Shared bytes carry no visitor: rendered without the request (no messages, CSRF token or user name).
    cached = tcache.trainer_page().get_or_build(
        tcache.TRAINERS, tcache.PAGE_VARIANT.format(page=page), lambda: _render(None, page)
    )
    return bytes_response(request, cached, content_type="text/html; charset=utf-8")
