"""Ownership changes between trainers: the direct exchange and trade offers.

Every change of hands goes through :func:`_swap`: pokemon rows are locked with ``SELECT ... FOR NO KEY UPDATE`` in
primary-key order (so two overlapping trades never wait on each other in a cycle), every pokemon is checked to be
still owned by the side giving it, owners move, the date of ownership resets and one history row per pokemon is
written, all in one transaction. Offers are locked after their pokemon, never before (an owner change locks the
pokemon, then invalidates its offers). ``NO KEY``: an owner change updates no key column, and the weaker lock does
not conflict with the ``FOR KEY SHARE`` that PostgreSQL's foreign-key checks take on a pokemon when an offer item or
a history row naming it is inserted. With ``FOR UPDATE`` a new offer's checks (run at its COMMIT, in the offer's
order, not by pk) could hold one pokemon while a trade held another in pk order and each waited for the other: a
deadlock reported to the offer (CI caught it in ``test_overlapping_trades_keep_invariants``). A deadlock the
database reports anyway is retried once, then answered 409 ``conflict_retry``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from bazaar.core import sql
from bazaar.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from bazaar.trading import conf
from bazaar.trading.models import (
    Cause,
    OfferItem,
    OfferState,
    OwnershipChange,
    Pokemon,
    TradeOffer,
    Trainer,
)
from bazaar.trading.services.common import may_act_for, may_see_offer, require_staff, with_retry


@dataclass(frozen=True)
class Exchanged:
    trainer_a: str
    trainer_b: str
    a_gave: list[str]
    b_gave: list[str]


def _trainers(a: str, b: str) -> tuple[Trainer, Trainer]:
    found = {t.public_id: t for t in Trainer.objects.filter(public_id__in=[a, b])}
    missing = [x for x in (a, b) if x not in found]
    if missing:
        raise NotFound(f"No trainer {missing[0]!r}.", code="trainer_not_found", details={"trainers": missing})
    return found[a], found[b]


def _check_sides(a: Trainer, b: Trainer, a_gives: list[str], b_gives: list[str]) -> None:
    if a.pk == b.pk:
        raise Conflict("A trainer cannot trade with themselves.", code="self_exchange")
    if not a_gives and not b_gives:
        raise ValidationFailed("At least one side must give a pokemon.", code="empty_exchange")
    seen: set[str] = set()
    twice = [p for p in [*a_gives, *b_gives] if p in seen or seen.add(p)]  # type: ignore[func-returns-value]
    if twice:
        raise Conflict(
            "A pokemon is listed more than once.",
            code="exchange_invalid",
            details={"problems": [{"pokemon": p, "reason": "listed_twice"} for p in sorted(set(twice))]},
        )


def _swap(
    a: Trainer, b: Trainer, a_gives: list[str], b_gives: list[str], *, cause: str, offer: TradeOffer | None
) -> list[dict[str, Any]]:
    """Lock, verify, move. Returns the problems (nothing moved then) or [] after moving everything."""
    ids = [*a_gives, *b_gives]
    rows = list(Pokemon.objects.select_for_update(no_key=True).filter(public_id__in=ids).order_by("pk"))
    by_id = {p.public_id: p for p in rows}
    problems: list[dict[str, Any]] = []
    for giver, wanted in ((a, a_gives), (b, b_gives)):
        for pid in wanted:
            pokemon = by_id.get(pid)
            if pokemon is None:
                problems.append({"pokemon": pid, "reason": "not_found"})
            elif pokemon.owner_id != giver.pk:
                problems.append({"pokemon": pid, "reason": "not_owned_by_giver", "giver": giver.public_id})
    if problems:
        return problems
    now = timezone.now()
    history: list[OwnershipChange] = []
    for giver, taker, wanted in ((a, b, a_gives), (b, a, b_gives)):
        pks = [by_id[pid].pk for pid in wanted]
        if not pks:
            continue
        Pokemon.objects.filter(pk__in=pks).update(owner=taker, date_of_ownership=now.date(), updated_at=now)
        history.extend(
            OwnershipChange(
                pokemon_id=pk, from_trainer=giver, to_trainer=taker, at=now, cause=cause, offer=offer
            )
            for pk in pks
        )
    OwnershipChange.objects.bulk_create(history)
    return []


def exchange(
    *, trainer_a: str, trainer_b: str, a_gives: list[str], b_gives: list[str], actor: Any = None
) -> Exchanged:
    """Atomically swap ``a_gives`` (owned by A) and ``b_gives`` (owned by B). Staff only: it needs both sides'
    consent, which trainers give through offers instead. NotFound for an unknown trainer; Conflict
    ``self_exchange``, ``exchange_invalid`` (details list each pokemon and why: not_found, not_owned_by_giver,
    listed_twice) or ``conflict_retry``; ValidationFailed ``empty_exchange``. Nothing changes on any failure."""
    require_staff(actor)
    a, b = _trainers(trainer_a, trainer_b)
    _check_sides(a, b, a_gives, b_gives)

    def run() -> Exchanged:
        with transaction.atomic():
            problems = _swap(a, b, a_gives, b_gives, cause=Cause.EXCHANGE, offer=None)
            if problems:
                raise Conflict(
                    "The exchange is not possible.", code="exchange_invalid", details={"problems": problems}
                )
        return Exchanged(a.public_id, b.public_id, list(a_gives), list(b_gives))

    return with_retry(run)


def offer_create(
    *, proposer: str, receiver: str, give: list[str], ask: list[str], actor: Any = None
) -> TradeOffer:
    """``proposer`` offers ``give`` for ``receiver``'s ``ask``. The actor must be staff or the proposer's user
    (PermissionDenied). Ownership is checked now (Conflict ``exchange_invalid``) and again at acceptance. The offer
    expires after TRADING_OFFER_TTL_SECONDS. Nothing changes hands here: the named pokemon are only held
    FOR KEY SHARE until the offer commits (``_hold_named``)."""
    a, b = _trainers(proposer, receiver)
    if not may_act_for(actor, a):
        raise PermissionDenied("You may only propose offers as your own trainer.", code="not_your_trainer")
    _check_sides(a, b, give, ask)
    found = {p.public_id: p for p in Pokemon.objects.filter(public_id__in=[*give, *ask])}
    problems = []
    for owner, wanted in ((a, give), (b, ask)):
        for pid in wanted:
            p = found.get(pid)
            if p is None:
                problems.append({"pokemon": pid, "reason": "not_found"})
            elif p.owner_id != owner.pk:
                problems.append({"pokemon": pid, "reason": "not_owned_by_giver", "giver": owner.public_id})
    if problems:
        raise Conflict("The offer is not possible.", code="exchange_invalid", details={"problems": problems})
    now = timezone.now()

    def run() -> TradeOffer:
        with transaction.atomic():
            _hold_named(found, [*give, *ask])
            offer = TradeOffer.objects.create(
                proposer=a,
                receiver=b,
                created_at=now,
                expires_at=now + dt.timedelta(seconds=conf.offer_ttl_seconds()),
            )
            OfferItem.objects.bulk_create(
                [OfferItem(offer=offer, pokemon=found[p], side=OfferItem.Side.GIVE) for p in give]
                + [OfferItem(offer=offer, pokemon=found[p], side=OfferItem.Side.ASK) for p in ask]
            )
        return offer

    # The same backstop as the trades (a retry, then 409 conflict_retry) for a cycle nobody has found yet.
    return with_retry(run)


def _hold_named(found: dict[str, Pokemon], named: list[str]) -> None:
    """Take FOR KEY SHARE on the pokemon an offer names, in pk order, before its items are written: what their
    foreign-key checks would take at COMMIT, taken first. A staff delete (FOR UPDATE) then either waits for this
    offer to commit — and finds its items to invalidate and remove — or has deleted a pokemon before, which
    is refused here as ``exchange_invalid`` (``not_found``). Without it the delete could commit between the
    ownership check and this COMMIT, whose foreign-key check then failed: an IntegrityError, a 500. A trade's
    FOR NO KEY UPDATE does not conflict with it, so an offer still never waits for a trade."""
    pks = sorted({found[pid].pk for pid in named})
    if not pks:
        return
    marks = ", ".join(["%s"] * len(pks))
    statement = f"SELECT id FROM {sql.table(Pokemon)} WHERE id IN ({marks}) ORDER BY id"  # noqa: S608
    with connection.cursor() as cur:
        cur.execute(statement + sql.lock_clause(strength="KEY SHARE"), pks)
        present = {row[0] for row in cur.fetchall()}
    gone = [{"pokemon": pid, "reason": "not_found"} for pid in named if found[pid].pk not in present]
    if gone:
        raise Conflict("The offer is not possible.", code="exchange_invalid", details={"problems": gone})


def _lock_pokemon(pks: Any) -> None:
    list(
        Pokemon.objects.select_for_update(no_key=True)
        .filter(pk__in=list(pks))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _locked_open_offer(offer_id: int, actor: Any = None) -> TradeOffer:
    """The offer row, locked. NotFound ``offer_not_found`` when it does not exist — or when ``actor`` is not one
    of its parties (nor staff): an offer is private to its two trainers, so a stranger learns nothing of it."""
    offer = (
        TradeOffer.objects.select_for_update(of=("self",))
        .select_related("proposer", "receiver")
        .filter(pk=offer_id)
        .first()
    )
    if offer is None or not may_see_offer(actor, offer):
        raise NotFound("No such offer.", code="offer_not_found")
    return offer


def _close(offer: TradeOffer, state: str, reason: str = "") -> None:
    offer.state = state
    offer.reason = reason
    offer.decided_at = timezone.now()
    offer.save(update_fields=["state", "reason", "decided_at"])


def _not_open(offer: TradeOffer, action: str) -> Conflict:
    return Conflict(
        f"Cannot {action} an offer that is {offer.state}.",
        code="offer_not_open",
        details={"state": offer.state},
    )


def offer_accept(*, offer_id: int, actor: Any = None) -> TradeOffer:
    """The receiver (or staff) accepts: inside one transaction its pokemon are locked in pk order, then the offer
    row (the order every writer of pokemon and offers follows), ownership is re-validated and the swap happens (cause ``offer``). PermissionDenied for anyone else;
    Conflict ``offer_not_open`` for a closed offer; an offer past its expiry becomes ``expired`` (Conflict
    ``offer_expired``) and one whose pokemon changed hands becomes ``invalid`` (Conflict ``offer_invalid`` with the
    problems) — those state changes are committed, the pokemon are untouched."""

    def run() -> tuple[TradeOffer, Conflict | None]:
        with transaction.atomic():
            # The one lock order (pokemon by pk, then offers), as an owner change takes them: never a cycle.
            _lock_pokemon(OfferItem.objects.filter(offer_id=offer_id).values_list("pokemon_id", flat=True))
            offer = _locked_open_offer(offer_id, actor)
            receiver = offer.receiver
            if not may_act_for(actor, receiver):
                raise PermissionDenied("Only the receiving trainer may accept.", code="not_your_offer")
            if offer.state != OfferState.OPEN:
                raise _not_open(offer, "accept")
            if offer.expires_at <= timezone.now():
                _close(offer, OfferState.EXPIRED, "expired before it was accepted")
                return offer, Conflict("The offer has expired.", code="offer_expired")
            proposer = Trainer.objects.get(pk=offer.proposer_id)
            items = list(OfferItem.objects.filter(offer=offer).select_related("pokemon"))
            give = [i.pokemon.public_id for i in items if i.side == OfferItem.Side.GIVE]
            ask = [i.pokemon.public_id for i in items if i.side == OfferItem.Side.ASK]
            problems = _swap(proposer, receiver, give, ask, cause=Cause.OFFER, offer=offer)
            if problems:
                _close(offer, OfferState.INVALID, "pokemon changed hands since the offer was made")
                return offer, Conflict(
                    "The offer is no longer valid: pokemon changed hands.",
                    code="offer_invalid",
                    details={"problems": problems},
                )
            _close(offer, OfferState.ACCEPTED)
            return offer, None

    offer, error = with_retry(run)
    if error is not None:
        raise error
    return offer


def offer_decline(*, offer_id: int, actor: Any = None) -> TradeOffer:
    """The receiver (or staff) declines an open offer. PermissionDenied; Conflict ``offer_not_open``. Locks the
    offer row."""
    with transaction.atomic():
        offer = _locked_open_offer(offer_id, actor)
        if not may_act_for(actor, offer.receiver):
            raise PermissionDenied("Only the receiving trainer may decline.", code="not_your_offer")
        if offer.state != OfferState.OPEN:
            raise _not_open(offer, "decline")
        _close(offer, OfferState.DECLINED)
    return offer


def offer_cancel(*, offer_id: int, actor: Any = None) -> TradeOffer:
    """The proposer (or staff) withdraws an open offer. PermissionDenied; Conflict ``offer_not_open``. Locks the
    offer row."""
    with transaction.atomic():
        offer = _locked_open_offer(offer_id, actor)
        if not may_act_for(actor, offer.proposer):
            raise PermissionDenied("Only the proposing trainer may cancel.", code="not_your_offer")
        if offer.state != OfferState.OPEN:
            raise _not_open(offer, "cancel")
        _close(offer, OfferState.CANCELLED)
    return offer


def offers_expire() -> int:
    """Mark every open offer past its expiry as ``expired`` (periodic task). One conditional UPDATE, so an offer
    being accepted concurrently is either accepted first (then no longer open) or expired, never both."""
    now = timezone.now()
    return TradeOffer.objects.filter(state=OfferState.OPEN, expires_at__lte=now).update(
        state=OfferState.EXPIRED, reason="expired", decided_at=now
    )
