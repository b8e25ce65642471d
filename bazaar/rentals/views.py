"""Rentals pages. The public catalogue: anonymous visits are served from cached bytes (and by the fast path before
Django); signed-in visitors get a fresh render because the page header names them. The desk (staff only): rent
and return by barcode through the same services as the API, CSRF-protected, never cached."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from bazaar.accounts.models import User
from bazaar.core.errors import DomainError, NotFound
from bazaar.core.forms import search_term
from bazaar.core.http import bytes_response
from bazaar.rentals import cache, selectors, services
from bazaar.rentals import render as pages
from bazaar.rentals.forms import RentForm, ReturnForm


def _private(body: bytes) -> HttpResponse:
    response = HttpResponse(body, content_type=cache.HTML)
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def catalogue(request: HttpRequest) -> HttpResponse:
    q = search_term(request.GET.get("q"))
    if request.user.is_authenticated:
        return _private(pages.catalogue_html(request, q))
    return bytes_response(request, pages.cached_catalogue_html(request, q), content_type=cache.HTML)


@require_GET
def title_detail(request: HttpRequest, title_id: int) -> HttpResponse:
    try:
        if request.user.is_authenticated:
            return _private(pages.title_html(request, title_id))
        return bytes_response(request, pages.cached_title_html(request, title_id), content_type=cache.HTML)
    except NotFound:
        raise Http404("No such title.")


# --- the desk: staff rent and return books by barcode -------------------------------------------------------


def _staff_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff pages: anonymous visitors go to the login page; a signed-in user who is not staff gets 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("accounts:login"))
        if not request.user.is_staff:
            raise PermissionDenied("The desk is for staff.")
        return view(request, *args, **kwargs)

    return wrapper


def _desk(
    request: HttpRequest,
    *,
    rent_form: Form | None = None,
    return_form: Form | None = None,
    status: int = 200,
) -> HttpResponse:
    response = render(
        request,
        "rentals/desk.html",
        {
            "rent_form": rent_form or RentForm(),
            "return_form": return_form or ReturnForm(),
            "open_rentals": selectors.desk_open_rentals(),
            "now": timezone.now(),
        },
        status=status,
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _clerk(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # _staff_only let only a signed-in staff user through
    return user


def _desk_post(
    request: HttpRequest, form: Form, slot: str, act: Callable[[dict[str, Any]], str]
) -> HttpResponse:
    """One desk form: shape errors re-show the desk with 422; a service refusal re-shows it with the reason and
    the service's status (nothing was written); success flashes ``act``'s message and redirects (post/redirect/get)."""
    if not form.is_valid():
        return _desk(request, **{slot: form}, status=422)
    try:
        message = act(form.cleaned_data)
    except DomainError as exc:
        form.add_error(None, exc.message)
        return _desk(request, **{slot: form}, status=exc.status)
    messages.success(request, message)
    return redirect("rentals:desk")


@require_GET
@_staff_only
def desk(request: HttpRequest) -> HttpResponse:
    """The lending desk: rent a copy to a customer, take a copy back, see what is out (overdue first)."""
    return _desk(request)


@require_POST
@_staff_only
def desk_rent(request: HttpRequest) -> HttpResponse:
    def rent(data: dict[str, Any]) -> str:
        customer = selectors.customer_by_ref(data["customer"])
        rental = services.rental_rent(customer_id=customer.pk, barcode=data["barcode"], by=_clerk(request))
        return (
            f"Rented “{rental.title.title}” (copy {rental.copy.barcode}) to {customer.name} (no. {customer.pk}), "
            f"due {timezone.localtime(rental.due_at):%Y-%m-%d %H:%M}."
        )

    return _desk_post(request, RentForm(request.POST), "rent_form", rent)


@require_POST
@_staff_only
def desk_return(request: HttpRequest) -> HttpResponse:
    def take_back(data: dict[str, Any]) -> str:
        rental = services.rental_return_copy(barcode=data["barcode"], by=_clerk(request))
        breakdown = rental.breakdown or {}
        days, fine = breakdown.get("days"), breakdown.get("fine")
        return (
            f"Returned “{rental.title.title}” (copy {rental.copy.barcode}) from {rental.customer.name}: "
            f"charge {rental.charge}"
            + (f" for {days} day{'s' if days != 1 else ''}" if days else "")
            + (f", including a {fine} overdue fine" if fine and fine != "0.00" else "")
            + "."
        )

    return _desk_post(request, ReturnForm(request.POST), "return_form", take_back)
