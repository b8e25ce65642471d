"""Account reads."""

from __future__ import annotations

from django.db.models import QuerySet

from bazaar.accounts.models import ApiToken, User


def token_list(*, user: User) -> QuerySet[ApiToken]:
    """The user's tokens, newest first, active and revoked."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")
