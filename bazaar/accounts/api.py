"""Accounts API: who am I, and API tokens."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest
from ninja import Router, Status

from bazaar.accounts import selectors, services
from bazaar.accounts.auth import current_user, user_auth
from bazaar.accounts.codes import Code
from bazaar.accounts.models import User
from bazaar.accounts.schemas import MeOut, TokenCreatedOut, TokenIn, TokenLoginIn, TokenOut
from bazaar.core.codes import answers
from bazaar.core.errors import Unauthorized
from bazaar.core.http import client_ip
from bazaar.core.schemas import ErrorOut, Int64

router = Router(tags=["accounts"])


def _created(issued: services.IssuedToken) -> dict[str, Any]:
    t = issued.token
    return {
        "id": t.pk,
        "name": t.name,
        "prefix": t.prefix,
        "created_at": t.created_at,
        "last_used_at": t.last_used_at,
        "revoked_at": t.revoked_at,
        "token": issued.secret,
    }


@router.get("/me", response=MeOut, auth=user_auth)
def me(request: HttpRequest) -> User:
    return current_user(request)


@router.get("/tokens", response=list[TokenOut], auth=user_auth)
def tokens_list(request: HttpRequest) -> Any:
    return list(selectors.token_list(user=current_user(request)))


@router.post("/tokens", response={201: TokenCreatedOut}, auth=user_auth)
def tokens_create(request: HttpRequest, payload: TokenIn) -> Any:
    return Status(201, _created(services.token_create(user=current_user(request), name=payload.name)))


@router.post("/tokens/login", response={201: TokenCreatedOut, 401: ErrorOut, 429: ErrorOut}, auth=None)
@answers({401: [Code.INVALID_CREDENTIALS], 429: [Code.LOGIN_THROTTLED]})
def tokens_login(request: HttpRequest, payload: TokenLoginIn) -> Any:
    """Exchange a username and password for a new token (throttled like the login page)."""
    ip = client_ip(request)
    services.login_attempt_start(username=payload.username, ip=ip)
    user = authenticate(request, username=payload.username, password=payload.password)
    if not isinstance(user, User):
        services.login_failed(username=payload.username, ip=ip)
        raise Unauthorized("Wrong username or password.", code="invalid_credentials")
    services.login_succeeded(username=payload.username)
    return Status(201, _created(services.token_create(user=user, name=payload.name)))


@router.delete("/tokens/{token_id}", response=TokenOut, auth=user_auth)
@answers({404: [Code.TOKEN_NOT_FOUND]})
def tokens_revoke(request: HttpRequest, token_id: Int64) -> Any:
    return services.token_revoke(user=current_user(request), token_id=token_id)
