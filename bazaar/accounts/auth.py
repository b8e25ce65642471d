"""API authentication: bearer tokens or the browser session.

The rule every endpoint answers by: no credentials, or credentials that are not valid here → 401 with
``WWW-Authenticate`` (``bazaar.config.api``); valid credentials without the right → 403 with a code that names
the right (``staff_required``). The session is checked for a signed-in user *before* CSRF, so an anonymous unsafe
request is a 401, and a signed-in session without its CSRF token is 403 ``csrf_failed``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth
from ninja.utils import check_csrf

from bazaar.accounts.models import User
from bazaar.accounts.services import token_authenticate
from bazaar.core.codes import CoreCode
from bazaar.core.errors import PermissionDenied

STAFF_REQUIRED = "This endpoint is for staff; the credentials are valid but not a staff user's."


class BearerToken(HttpBearer):
    """A user's API token (``Authorization: Bearer <token>``)."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = token_authenticate(token)
        if user is not None:
            request.user = user
        return user


class StaffBearerToken(BearerToken):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = super().authenticate(request, token)
        if user is not None and not user.is_staff:
            raise PermissionDenied(STAFF_REQUIRED, code=CoreCode.STAFF_REQUIRED)
        return user


class Session(SessionAuth):
    """The browser session — not consulted when the request carries an ``Authorization`` header: a client that
    sent a token is answered about its token (401 when it is not a valid credential here), not refused by the
    session's CSRF check it never meant to use. Anonymous → None (401); signed in without the CSRF token of an
    unsafe request → 403 ``csrf_failed``."""

    def __call__(self, request: HttpRequest) -> Any:
        if request.headers.get("Authorization"):
            return None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if self.csrf and not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise PermissionDenied(
                "Send the CSRF token (the csrftoken cookie) in the X-CSRFToken header.",
                code=CoreCode.CSRF_FAILED,
            )
        return self.authenticate(request, None)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        return user if user.is_authenticated else None


class StaffSession(Session):
    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user is not None and not user.is_staff:
            raise PermissionDenied(STAFF_REQUIRED, code=CoreCode.STAFF_REQUIRED)
        return user


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
