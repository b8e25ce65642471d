"""Account writes: signup, tokens, login throttling."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from bazaar.accounts.cache import token_cache_key
from bazaar.accounts.models import ApiToken, LoginCounter, User
from bazaar.core import cache, sql
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
        cache.delete_raw_on_commit(token_cache_key(token.digest))
    return token


#: How long a verified token is trusted from the cache before the database is asked again. Revocation is
#: immediate (the entry is deleted on commit); a user's deactivation or staff change takes effect within this.
TOKEN_CACHE_SECONDS = 30


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
    key = token_cache_key(digest)
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


# --- login throttling ----------------------------------------------------------------------------------------
# An account's attempts are counted in the database only (one atomic upsert per attempt): the count that decides
# which attempts reach a password check is exact whatever the cache does, including across the start of a cache
# outage, which a cache counter could not see past. An address's failures are counted in the cache (one atomic
# INCR) and, while the cache is unavailable, in the database; each total is the sum of both stores. A cache outage
# never switches the throttle off, and never becomes a login outage (docs/design-notes.md, "Login throttling").

_DB_HIT = """
INSERT INTO {table} (name, window_start, count) VALUES (%s, %s, 1)
ON CONFLICT (name) DO UPDATE SET
  count = CASE WHEN {table}.window_start <= %s THEN 1 ELSE {table}.count + 1 END,
  window_start = CASE WHEN {table}.window_start <= %s THEN excluded.window_start ELSE {table}.window_start END
RETURNING count
"""


def _db_hit(name: str) -> int:
    now = int(time.time())
    expired = now - settings.LOGIN_THROTTLE_WINDOW
    with connection.cursor() as cur:
        cur.execute(_DB_HIT.format(table=sql.table(LoginCounter)), [name, now, expired, expired])
        return int(cur.fetchone()[0])


def _db_peek(name: str) -> int:
    since = int(time.time()) - settings.LOGIN_THROTTLE_WINDOW
    found = LoginCounter.objects.filter(name=name, window_start__gt=since).values_list("count", flat=True)
    return next(iter(found), 0)


def _hit(name: str) -> int:
    """Count one more event under ``name`` and return the window's total, atomically (no lost or double counts
    under concurrency): Redis INCR, or the database's upsert while the cache is unavailable."""
    n = cache.hit_counter(name, settings.LOGIN_THROTTLE_WINDOW)
    if n == 0:  # the cache is unavailable: a working INCR never answers 0
        return _db_hit(name)
    return n + _db_peek(name)


def _peek(name: str) -> int:
    return cache.peek_counter(name) + _db_peek(name)


def login_attempt_start(*, username: str, ip: str) -> None:
    """Admit one login attempt, before any password is checked, or raise RateLimited ``login_throttled``.

    The attempt is counted against the account first (atomically, in the database) and refused when that count is
    beyond LOGIN_THROTTLE_PER_ACCOUNT, so of any number of concurrent attempts exactly the limit reach the password
    check, with the cache up, down, or failing in between; a success clears the count (``login_succeeded``). Also
    refused when the address has failed LOGIN_THROTTLE_PER_IP times in the window (counted by ``login_failed``).
    Holds no row lock beyond its statement (the upsert is one atomic statement).
    """
    user_key, ip_key = _throttle_keys(username, ip)
    if _peek(ip_key) >= settings.LOGIN_THROTTLE_PER_IP:
        raise RateLimited(
            "Too many failed logins from this address; try again later.", code="login_throttled"
        )
    if _db_hit(user_key) > settings.LOGIN_THROTTLE_PER_ACCOUNT:
        raise RateLimited("Too many failed logins for this account; try again later.", code="login_throttled")


def login_failed(*, username: str, ip: str) -> None:
    """Count a wrong password against the address (the account's count was taken by ``login_attempt_start``)."""
    _hit(_throttle_keys(username, ip)[1])


def login_succeeded(*, username: str) -> None:
    """A right password clears the account's count."""
    LoginCounter.objects.filter(name=_throttle_keys(username, "")[0]).delete()


def login_counters_prune() -> int:
    """Delete database counters whose window has ended (run by the maintenance task); returns how many."""
    since = int(time.time()) - settings.LOGIN_THROTTLE_WINDOW
    return LoginCounter.objects.filter(window_start__lte=since).delete()[0]
