"""API authentication: bearer tokens or the browser session (CSRF-checked by Ninja)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from bazaar.accounts.models import User
from bazaar.accounts.services import token_authenticate
from bazaar.core.errors import PermissionDenied


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = token_authenticate(token)
        if user is not None:
            request.user = user
        return user


class StaffBearerToken(BearerToken):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = super().authenticate(request, token)
        return user if user is not None and user.is_staff else None


class Session(SessionAuth):
    """The browser session — not consulted when the request carries an ``Authorization`` header: a client that
    sent a token is answered about its token (401 when it is not a valid credential here), not refused by the
    session's CSRF check ("CSRF check Failed") it never meant to use."""

    def __call__(self, request: HttpRequest) -> Any:
        if request.headers.get("Authorization"):
            return None
        return super().__call__(request)


class StaffSession(Session):
    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        return user if user is not None and user.is_staff else None


#: Any signed-in user, by token or session.
user_auth = [BearerToken(), Session()]
#: Staff only (rentals desk, back-office endpoints).
staff_auth = [StaffBearerToken(), StaffSession()]


def current_user(request: HttpRequest) -> User:
    """The authenticated user of an API request (after Ninja's auth ran)."""
    user = getattr(request, "auth", None) or request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise PermissionDenied()
    return user
