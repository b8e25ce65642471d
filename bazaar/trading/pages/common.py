"""Helpers shared by the trading pages: who may open them, uncached responses, refusals as pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

View = Callable[..., HttpResponse]


def page(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200, public: bool = False
) -> HttpResponse:
    """Render an uncached page: ``private, no-store`` for signed-in visitors (it names them and their data);
    ``no-cache`` for a public page seen anonymously (it changes with every trade)."""
    response = render(request, template, context, status=status)
    signed_in = request.user.is_authenticated
    response["Cache-Control"] = "private, no-store" if signed_in or not public else "no-cache"
    return response


def signed_in(view: View) -> View:
    """Anonymous visitors go to the login page (and come back after it)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("accounts:login"))
        return view(request, *args, **kwargs)

    return wrapper


def staff_only(view: View) -> View:
    """Staff pages: anonymous visitors go to the login page; a signed-in user who is not staff gets 403."""

    @wraps(view)
    @signed_in
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("This page is for staff.")
        return view(request, *args, **kwargs)

    return wrapper


def page_number(request: HttpRequest) -> str:
    return request.GET.get("page", "1")[:6]


_REASONS = {
    "not_found": "does not exist",
    "not_owned_by_giver": "does not belong to {giver}",
    "listed_twice": "is listed more than once",
}


def problems_in_words(details: Any) -> list[str]:
    """The ``problems`` a trade service lists (pokemon, reason, giver) as sentences."""
    problems = details.get("problems", []) if isinstance(details, dict) else []
    return [
        f"{p.get('pokemon')} "
        + _REASONS.get(str(p.get("reason")), str(p.get("reason"))).format(giver=p.get("giver"))
        for p in problems
    ]
