"""What the rentals pages share: the staff gate, private responses, and showing a service's refusal."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from bazaar.accounts.models import User
from bazaar.rentals import cache


def private(body: bytes) -> HttpResponse:
    """A signed-in visitor's rendering of a shared page: never stored by a shared cache."""
    response = HttpResponse(body, content_type=cache.HTML)
    response["Cache-Control"] = "private, no-store"
    return response


def page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """A signed-in page (the desk, the patron's account): rendered fresh, never stored anywhere."""
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


def login_first(request: HttpRequest) -> HttpResponse:
    return redirect_to_login(request.get_full_path(), reverse("accounts:login"))


def staff_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff pages: anonymous visitors go to the login page; a signed-in user who is not staff gets 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return login_first(request)
        if not request.user.is_staff:
            raise PermissionDenied("The desk is for staff.")
        return view(request, *args, **kwargs)

    return wrapper


def signed_in(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Pages for a signed-in person (the patron's account): anonymous visitors go to the login page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return login_first(request)
        return view(request, *args, **kwargs)

    return wrapper


def user_of(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # staff_only / signed_in let only a signed-in user through
    return user
