"""Account writes: signup, tokens, login throttling."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from bazaar.accounts.models import ApiToken, User
from bazaar.core import cache
from bazaar.core.errors import Conflict, NotFound, RateLimited, ValidationFailed

TOKEN_PREFIX = "bzr_"


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str


def user_signup(*, username: str, password: str, email: str = "", is_staff: bool = False) -> User:
    """Create a user after running Django's password validators.

    Raises ValidationFailed (weak password, bad username) or Conflict (username taken); writes nothing then.
    """
    username = username.strip()
    if not username:
        raise ValidationFailed("A username is required.", details={"field": "username"})
    candidate = User(username=username, email=email)
    try:
        password_validation.validate_password(password, candidate)
    except DjangoValidationError as exc:
        raise ValidationFailed("The password is too weak.", details={"password": list(exc.messages)})
    try:
        with transaction.atomic():
            if User.objects.filter(username__iexact=username).exists():
                raise Conflict("That username is taken.", code="username_taken")
            user = User(username=username, email=email, is_staff=is_staff)
            user.set_password(password)
            user.save()
    except IntegrityError:
        raise Conflict("That username is taken.", code="username_taken")
    return user


def token_create(*, user: User, name: str = "default") -> IssuedToken:
    """Issue a new bearer token for ``user``; the secret is returned once and only its digest is kept."""
    name = (name or "default").strip()[:100]
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=secret[:12], digest=token_digest(secret))
    return IssuedToken(token=token, secret=secret)


def token_revoke(*, user: User, token_id: int) -> ApiToken:
    """Revoke one of ``user``'s tokens (NotFound for anyone else's). Revoking twice is harmless."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(user=user, pk=token_id).first()
        if token is None:
            raise NotFound("No such token.", code="token_not_found")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
        cache.delete_raw_on_commit(_token_cache_key(token.digest))
    return token


#: How long a verified token is trusted from the cache before the database is asked again. Revocation is
#: immediate (the entry is deleted on commit); a user's deactivation or staff change takes effect within this.
TOKEN_CACHE_SECONDS = 30


def _token_cache_key(digest: str) -> str:
    return cache.raw_key("accounts", "token", digest)


def token_authenticate(secret: str) -> User | None:
    """Return the active user behind a bearer secret, or None.

    Hot path: a verified token is remembered in the cache for TOKEN_CACHE_SECONDS as (user id, staff flags,
    username, e-mail), so an authenticated API call costs one cache read instead of a join on every request; the user is
    then an unsaved-looking instance with those fields (enough for permission checks and foreign keys).
    Revoking deletes the entry after commit. Touches last_used_at at most once a minute, on the database path.
    """
    if not secret.startswith(TOKEN_PREFIX):
        return None
    digest = token_digest(secret)
    key = _token_cache_key(digest)
    raw = cache.get_raw(key)
    if raw:
        uid, is_staff, is_superuser, username, email = json.loads(raw)
        user = User(pk=uid, username=username, email=email, is_staff=is_staff, is_superuser=is_superuser)
        user._state.adding = False
        user._state.db = "default"
        return user
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=digest, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    u = token.user
    # Everything an API answer may show of the user (GET /api/accounts/me), so a cached answer equals the database's.
    flag = json.dumps([u.pk, u.is_staff, u.is_superuser, u.username, u.email])
    cache.set_raw(key, flag.encode(), TOKEN_CACHE_SECONDS)
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return u


def _throttle_keys(username: str, ip: str) -> tuple[str, str]:
    return f"login:user:{username.lower()}", f"login:ip:{ip}"


def login_throttle_check(*, username: str, ip: str) -> None:
    """Refuse a login attempt when the account or the IP has failed too often in the window (RateLimited)."""
    user_key, ip_key = _throttle_keys(username, ip)
    if cache.peek_counter(user_key) >= settings.LOGIN_THROTTLE_PER_ACCOUNT:
        raise RateLimited("Too many failed logins for this account; try again later.", code="login_throttled")
    if cache.peek_counter(ip_key) >= settings.LOGIN_THROTTLE_PER_IP:
        raise RateLimited(
            "Too many failed logins from this address; try again later.", code="login_throttled"
        )


def login_failed(*, username: str, ip: str) -> None:
    user_key, ip_key = _throttle_keys(username, ip)
    cache.hit_counter(user_key, settings.LOGIN_THROTTLE_WINDOW)
    cache.hit_counter(ip_key, settings.LOGIN_THROTTLE_WINDOW)


def login_succeeded(*, username: str) -> None:
    cache.clear_counter(_throttle_keys(username, "")[0])
