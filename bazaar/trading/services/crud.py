"""Create/update/delete of trainers and pokemon. Creating an existing id is a 409: upsert is the import's job."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from bazaar.accounts.models import User
from bazaar.core.errors import Conflict, NotFound, ValidationFailed
from bazaar.core.schemas import text_problem
from bazaar.trading.models import Cause, OfferState, OwnershipChange, Pokemon, TradeOffer, Trainer
from bazaar.trading.services.common import check_public_id, require_staff, with_retry

TRAINER_FIELDS = {"first_name", "last_name", "date_of_birth", "username"}
POKEMON_FIELDS = {"nickname", "species", "level", "owner", "date_of_ownership"}


def _text(value: Any, field: str, max_len: int = 100) -> str:
    text = str(value or "").strip()
    if not text or len(text) > max_len:
        raise ValidationFailed(f"{field} must be 1-{max_len} characters.", details={"field": field})
    problem = text_problem(
        text, multiline=True
    )  # the API's rule for body text, for every caller (CLI, admin)
    if problem is not None:
        raise ValidationFailed(problem, code="invalid_text", details={"field": field})
    return text


def _level(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ValidationFailed("level must be an integer from 1 to 100.", code="invalid_level")
    return int(value)


def _user_by_name(username: str | None) -> User | None:
    if not username:
        return None
    user = User.objects.filter(username=username).first()
    if user is None:
        raise ValidationFailed("No such user.", code="unknown_user", details={"field": "username"})
    return user


def _trainer(public_id: str, *, lock: bool = False) -> Trainer:
    qs = Trainer.objects.select_for_update() if lock else Trainer.objects.all()
    trainer = qs.filter(public_id=public_id).first()
    if trainer is None:
        raise NotFound(f"No trainer {public_id!r}.", code="trainer_not_found")
    return trainer


def trainer_create(
    *,
    public_id: str,
    first_name: str,
    last_name: str,
    date_of_birth: dt.date,
    username: str | None = None,
    actor: Any = None,
) -> Trainer:
    """Create a trainer (staff). Conflict ``trainer_exists`` if the id is taken (never overwrites),
    ``user_taken`` if the account is linked to another trainer; ValidationFailed for bad fields."""
    require_staff(actor)
    public_id = check_public_id(public_id)
    trainer = Trainer(
        public_id=public_id,
        first_name=_text(first_name, "first_name"),
        last_name=_text(last_name, "last_name"),
        date_of_birth=date_of_birth,
        user=_user_by_name(username),
    )
    if date_of_birth > timezone.now().date():
        raise ValidationFailed("date_of_birth is in the future.", details={"field": "date_of_birth"})
    try:
        with transaction.atomic():
            trainer.save()
    except IntegrityError:
        if Trainer.objects.filter(public_id=public_id).exists():
            raise Conflict(f"Trainer {public_id!r} exists.", code="trainer_exists")
        raise Conflict("That user is linked to another trainer.", code="user_taken")
    return trainer


def trainer_update(*, public_id: str, changes: dict[str, Any], actor: Any = None) -> Trainer:
    """Change a trainer's fields (staff); the id never changes. NotFound, ValidationFailed, Conflict
    ``user_taken``. Locks the trainer row."""
    require_staff(actor)
    unknown = set(changes) - TRAINER_FIELDS
    if unknown:
        raise ValidationFailed("Unknown fields.", details={"fields": sorted(unknown)})
    try:
        with transaction.atomic():
            trainer = _trainer(public_id, lock=True)
            for name in ("first_name", "last_name"):
                if name in changes:
                    setattr(trainer, name, _text(changes[name], name))
            if "date_of_birth" in changes:
                trainer.date_of_birth = changes["date_of_birth"]
            if "username" in changes:
                trainer.user = _user_by_name(changes["username"])
            trainer.save()
    except IntegrityError:
        raise Conflict("That user is linked to another trainer.", code="user_taken")
    return trainer


def trainer_delete(*, public_id: str, cascade: bool = False, actor: Any = None) -> int:
    """Delete a trainer (staff). Refused with Conflict ``trainer_has_pokemon`` while they own pokemon unless
    ``cascade`` (then their pokemon go too, and open offers touching them become invalid). Returns the number of
    pokemon deleted. Locks the trainer row, then their pokemon in pk order."""
    require_staff(actor)
    with transaction.atomic():
        trainer = _trainer(public_id, lock=True)
        owned = list(
            Pokemon.objects.select_for_update()
            .filter(owner=trainer)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if owned and not cascade:
            raise Conflict(
                f"Trainer {public_id!r} owns {len(owned)} pokemon; delete with cascade=true to remove them too.",
                code="trainer_has_pokemon",
                details={"pokemon_count": len(owned)},
            )
        _invalidate_offers_for(owned, reason="a pokemon in the offer was deleted")
        Pokemon.objects.filter(pk__in=owned).delete()
        trainer.delete()
    return len(owned)


def _invalidate_offers_for(pokemon_pks: list[int], *, reason: str) -> None:
    """Open offers naming these (already locked) pokemon become invalid; the offers are locked after the pokemon
    and in pk order, the order offer_accept takes them too."""
    if not pokemon_pks:
        return
    offers = list(
        TradeOffer.objects.select_for_update(of=("self",))
        .filter(state=OfferState.OPEN, items__pokemon_id__in=pokemon_pks)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    TradeOffer.objects.filter(pk__in=offers).update(
        state=OfferState.INVALID, reason=reason, decided_at=timezone.now()
    )


def pokemon_create(
    *,
    public_id: str,
    nickname: str,
    species: str,
    level: int,
    owner: str,
    date_of_ownership: dt.date | None = None,
    actor: Any = None,
) -> Pokemon:
    """Create a pokemon owned by ``owner`` (staff) and its first history row (cause ``create``).
    Conflict ``pokemon_exists`` (never overwrites), NotFound ``trainer_not_found``, ValidationFailed."""
    require_staff(actor)
    public_id = check_public_id(public_id)
    nickname, species, level = _text(nickname, "nickname"), _text(species, "species"), _level(level)
    now = timezone.now()
    try:
        with transaction.atomic():
            trainer = _trainer(owner)
            pokemon = Pokemon.objects.create(
                public_id=public_id,
                nickname=nickname,
                species=species,
                level=level,
                owner=trainer,
                date_of_ownership=date_of_ownership or now.date(),
            )
            OwnershipChange.objects.create(pokemon=pokemon, to_trainer=trainer, at=now, cause=Cause.CREATE)
    except IntegrityError:
        raise Conflict(f"Pokemon {public_id!r} exists.", code="pokemon_exists")
    return pokemon


def pokemon_update(*, public_id: str, changes: dict[str, Any], actor: Any = None) -> Pokemon:
    """Change a pokemon (staff). A new owner is an ``admin`` ownership change: history row written, the date of
    ownership reset (unless given), open offers that include it become invalid. Locks the pokemon row, then those
    offers in pk order (the one order, as offer_accept); a deadlock anyway is retried once, then Conflict
    ``conflict_retry``."""
    require_staff(actor)
    unknown = set(changes) - POKEMON_FIELDS
    if unknown:
        raise ValidationFailed("Unknown fields.", details={"fields": sorted(unknown)})
    now = timezone.now()

    def run() -> Pokemon:
        with transaction.atomic():
            # NO KEY, as a trade locks it: an owner change updates no key column (bazaar.trading.services.trades).
            pokemon = Pokemon.objects.select_for_update(no_key=True).filter(public_id=public_id).first()
            if pokemon is None:
                raise NotFound(f"No pokemon {public_id!r}.", code="pokemon_not_found")
            for name in ("nickname", "species"):
                if name in changes:
                    setattr(pokemon, name, _text(changes[name], name))
            if "level" in changes:
                pokemon.level = _level(changes["level"])
            if changes.get("date_of_ownership"):
                pokemon.date_of_ownership = changes["date_of_ownership"]
            if "owner" in changes:
                new_owner = _trainer(str(changes["owner"]))
                if new_owner.pk != pokemon.owner_id:
                    OwnershipChange.objects.create(
                        pokemon=pokemon,
                        from_trainer_id=pokemon.owner_id,
                        to_trainer=new_owner,
                        at=now,
                        cause=Cause.ADMIN,
                    )
                    _invalidate_offers_for([pokemon.pk], reason=f"{public_id} changed hands")
                    pokemon.owner = new_owner
                    if not changes.get("date_of_ownership"):
                        pokemon.date_of_ownership = now.date()
            pokemon.save()
        return pokemon

    return with_retry(run)  # a deadlock the lock order should prevent: retried once, then 409 conflict_retry


def pokemon_delete(*, public_id: str, actor: Any = None) -> None:
    """Delete a pokemon and its history (staff); open offers that include it become invalid. NotFound."""
    require_staff(actor)
    with transaction.atomic():
        pokemon = Pokemon.objects.select_for_update().filter(public_id=public_id).first()
        if pokemon is None:
            raise NotFound(f"No pokemon {public_id!r}.", code="pokemon_not_found")
        _invalidate_offers_for([pokemon.pk], reason=f"{public_id} was deleted")
        pokemon.delete()
