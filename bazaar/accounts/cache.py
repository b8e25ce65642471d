"""What accounts keeps in the cache (verified bearer tokens, ``services.token_authenticate``) and the writes that
drop it: any write of a token (revoked in the admin, the API, the CLI) or of its user (deactivated, staff rights
changed) removes the flags after commit, through bazaar.core.freshness, so the next request is checked in the
database. Flags are also tagged with the cache epoch (core.cache.raw): a revocation made while the cache was down
is settled before the cache is trusted again."""

from __future__ import annotations

from typing import Any

from bazaar.core import cache


def token_cache_key(digest: str) -> str:
    return cache.raw_key("accounts", "token", digest)


def _forget_token(token: Any) -> None:
    cache.delete_raw_on_commit(token_cache_key(token.digest))


def _forget_user_tokens(user: Any) -> None:
    from bazaar.accounts.models import ApiToken

    for digest in ApiToken.objects.filter(user_id=user.pk).values_list("digest", flat=True):
        cache.delete_raw_on_commit(token_cache_key(digest))


def declare() -> None:
    """Called once from AccountsConfig.ready()."""
    from bazaar.accounts.models import ApiToken, User
    from bazaar.core import freshness

    # What a cached flag holds: the token's revocation and its user's id, name, activity and staff rights (the
    # once-a-minute ``last_used_at`` touch and a login's ``last_login`` leave the flags alone).
    freshness.effect(ApiToken, _forget_token, fields=("revoked_at", "user", "digest"))
    freshness.effect(
        User, _forget_user_tokens, fields=("username", "email", "is_active", "is_staff", "is_superuser")
    )
