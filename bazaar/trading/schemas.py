"""Trading API schemas (explicit fields; inputs reject unknown fields)."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Schema

from bazaar.core.schemas import StrictIn

ID = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")


class TrainerIn(StrictIn):
    id: str = ID
    first_name: str = Field(..., min_length=1, max_length=100)
    last_name: str = Field(..., min_length=1, max_length=100)
    date_of_birth: dt.date
    username: str | None = Field(
        None, description="Link the trainer to this user account (it may then act for it)."
    )


class TrainerPatch(StrictIn):
    first_name: str | None = Field(None, min_length=1, max_length=100)
    last_name: str | None = Field(None, min_length=1, max_length=100)
    date_of_birth: dt.date | None = None
    username: str | None = None


class TrainerOut(Schema):
    id: str
    first_name: str
    last_name: str
    date_of_birth: dt.date


class TrainerDetailOut(TrainerOut):
    pokemon_count: int


class TrainerPage(Schema):
    count: int = Field(
        description="Matching rows: exact up to 10,000, the planner's estimate above (count_exact)."
    )
    count_exact: bool
    limit: int
    offset: int
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page.")
    items: list[TrainerOut]


class PokemonIn(StrictIn):
    id: str = ID
    nickname: str = Field(..., min_length=1, max_length=100)
    species: str = Field(..., min_length=1, max_length=100)
    level: int = Field(..., ge=1, le=100)
    owner: str = ID
    date_of_ownership: dt.date | None = None


class PokemonPatch(StrictIn):
    nickname: str | None = Field(None, min_length=1, max_length=100)
    species: str | None = Field(None, min_length=1, max_length=100)
    level: int | None = Field(None, ge=1, le=100)
    owner: str | None = Field(None, min_length=1, max_length=64)
    date_of_ownership: dt.date | None = None


class PokemonOut(Schema):
    id: str
    nickname: str
    species: str
    level: int
    owner: str
    date_of_ownership: dt.date


class PokemonPage(Schema):
    count: int = Field(
        description="Matching rows: exact up to 10,000, the planner's estimate above (count_exact)."
    )
    count_exact: bool
    limit: int
    offset: int
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page.")
    items: list[PokemonOut]


class HistoryOut(Schema):
    at: dt.datetime
    cause: str
    from_: str | None = Field(None, alias="from")
    to: str | None
    offer: int | None


class ExchangeIn(StrictIn):
    trainer_a: str = ID
    trainer_b: str = ID
    a_gives: list[str] = Field(default_factory=list, max_length=100)
    b_gives: list[str] = Field(default_factory=list, max_length=100)


class ExchangeOut(Schema):
    trainer_a: str
    trainer_b: str
    a_gave: list[str]
    b_gave: list[str]


class OfferIn(StrictIn):
    proposer: str = ID
    receiver: str = ID
    give: list[str] = Field(default_factory=list, max_length=100)
    ask: list[str] = Field(default_factory=list, max_length=100)
    message: str = Field("", description="A note to the receiver (at most 500 characters).")
    expires_in_days: int | None = Field(None, description="1-30; default: TRADING_OFFER_TTL_SECONDS.")


class CounterIn(StrictIn):
    give: list[str] = Field(
        default_factory=list, max_length=100, description="Your pokemon (the receiver's)."
    )
    ask: list[str] = Field(default_factory=list, max_length=100, description="The proposer's pokemon.")
    message: str = ""
    expires_in_days: int | None = None


class OfferOut(Schema):
    id: int
    proposer: str
    receiver: str
    state: str
    reason: str
    message: str
    counter_to: int | None
    give: list[str]
    ask: list[str]
    created_at: dt.datetime
    expires_at: dt.datetime
    decided_at: dt.datetime | None


class OfferPage(Schema):
    count: int
    limit: int
    offset: int
    items: list[OfferOut]


class ImportOut(Schema):
    kind: str
    dry_run: bool
    rows: int
    created: int
    updated: int
    history_rows: int
    ownership_changes: int
    seconds: float


class JobOut(Schema):
    id: int
    url: str
    kind: str
    state: str
    dry_run: bool
    size: int
    rows_validated: int
    rows_written: int
    result: dict[str, object] | None
    errors: dict[str, object] | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
