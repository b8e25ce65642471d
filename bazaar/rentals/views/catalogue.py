"""The public catalogue. Anonymous visits are served from cached bytes (and by the fast path before Django): the
same bytes for everybody, no names, no CSRF token, no messages. Signed-in visitors get a fresh private render,
which adds the "Place hold" button for a patron with a library card."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from bazaar.core.errors import DomainError, NotFound
from bazaar.core.forms import search_term
from bazaar.core.http import bytes_response
from bazaar.rentals import cache, services
from bazaar.rentals import render as pages
from bazaar.rentals.selectors import patrons
from bazaar.rentals.views.common import private, signed_in, user_of

MAX_PAGE = 1000


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise Http404("No such page.")
    return int(raw)


@require_GET
def catalogue(request: HttpRequest) -> HttpResponse:
    q, page = search_term(request.GET.get("q")), _page_number(request)
    if request.user.is_authenticated:
        return private(pages.catalogue_html(request, q, page))
    return bytes_response(request, pages.cached_catalogue_html(request, q, page), content_type=cache.HTML)


@require_GET
def title_detail(request: HttpRequest, title_id: int) -> HttpResponse:
    try:
        if request.user.is_authenticated:
            patron = patrons.customer_for_user(user=request.user)
            return private(pages.title_html(request, title_id, patron))
        return bytes_response(request, pages.cached_title_html(request, title_id), content_type=cache.HTML)
    except NotFound:
        raise Http404("No such title.")


@require_POST
@signed_in
def hold_place(request: HttpRequest, title_id: int) -> HttpResponse:
    """A signed-in patron puts themselves on the title's waiting list (``hold_place``); refusals are flashed with
    the service's reason and write nothing. A user without a library card is told to ask at the desk."""
    patron = patrons.customer_for_user(user=user_of(request))
    if patron is None:
        messages.error(request, "Your account has no library card yet; ask at the desk to link one.")
        return redirect("rentals:title", title_id=title_id)
    try:
        services.hold_place(customer_id=patron.pk, title_id=title_id)
    except NotFound:
        raise Http404("No such title.")
    except DomainError as exc:  # the title page again, with the reason and the service's status
        messages.error(request, exc.message)
        response = private(pages.title_html(request, title_id, patron))
        response.status_code = exc.status
        return response
    messages.success(request, "Hold placed: you will get an e-mail when a copy is put aside for you.")
    return redirect("rentals:account")
