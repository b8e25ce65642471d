from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema

from bazaar.core.schemas import StrictIn


class TokenIn(StrictIn):
    name: str = Field(default="default", max_length=100)


class TokenLoginIn(StrictIn):
    username: str = Field(max_length=150)
    password: str = Field(max_length=256)
    name: str = Field(default="api", max_length=100)


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The secret. Shown once; store it now.")


class MeOut(Schema):
    id: int
    username: str
    email: str
    is_staff: bool
