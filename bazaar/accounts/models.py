"""Users and API tokens."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models

from bazaar.core.freshness import FreshQuerySet


class FreshUserManager(UserManager.from_queryset(FreshQuerySet)):  # type: ignore[misc]
    """Django's user manager whose bulk updates (``filter(...).update(is_active=False)``) invalidate too."""


class User(AbstractUser):
    """Bazaar's user. Custom from the first migration so fields can be added without a painful swap later."""

    # Typed as Django's UserManager (the class above is built at runtime, which mypy cannot follow).
    objects: ClassVar[UserManager[User]] = FreshUserManager()

    class Meta:
        swappable = "AUTH_USER_MODEL"
        verbose_name = "user"
        verbose_name_plural = "users"


class ApiToken(models.Model):
    """A bearer token. Only a SHA-256 digest is stored; the secret is shown once when created."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="First characters of the token, to recognise it.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = FreshQuerySet["ApiToken"].as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "revoked_at"], name="token_user_active")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class LoginCounter(models.Model):
    """A login-throttle counter (see ``accounts.services.login_attempt_start``), counting in a fixed window: every
    account's attempts, and an address's failures while the cache is unavailable. One row per account or address."""

    name = models.CharField(max_length=200, unique=True)
    window_start = models.BigIntegerField(help_text="Unix time the current window started.")
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.count}"
