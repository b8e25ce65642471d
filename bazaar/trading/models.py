"""Trading data: trainers, pokemon (exactly one owner each), ownership history, trade offers, import jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from bazaar.core.freshness import FreshQuerySet
from bazaar.core.models import Job, Lifecycle


class Trainer(models.Model):
    # Unique through Meta.constraints, not unique=True: on PostgreSQL that would add a second (LIKE) index.
    public_id = models.CharField(max_length=64)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="trainer",
        help_text="The account that may act for this trainer through the API.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FreshQuerySet["Trainer"].as_manager()

    class Meta:
        ordering = ["public_id"]
        constraints = [
            models.UniqueConstraint(fields=["public_id"], name="trading_trainer_public_id_uniq"),
            models.CheckConstraint(condition=~Q(public_id=""), name="trading_trainer_id_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.first_name} {self.last_name}"


class Pokemon(models.Model):
    # Every index here is maintained a million times by a large import: public_id is unique through a constraint
    # (no extra LIKE index); owner has one index, (owner, public_id), which also serves a trainer's pokemon in id
    # order (the list's default order) without walking the whole public_id index.
    public_id = models.CharField(max_length=64)
    nickname = models.CharField(max_length=100)
    species = models.CharField(max_length=100)
    level = models.PositiveSmallIntegerField()
    # NOT NULL foreign key: exactly one owner at any time; PROTECT so a trainer is never deleted from under them.
    owner = models.ForeignKey(Trainer, on_delete=models.PROTECT, related_name="pokemon", db_index=False)
    date_of_ownership = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FreshQuerySet["Pokemon"].as_manager()

    class Meta:
        ordering = ["public_id"]
        indexes = [models.Index(fields=["owner", "public_id"], name="trading_pokemon_owner_pid")]
        constraints = [
            models.UniqueConstraint(fields=["public_id"], name="trading_pokemon_public_id_uniq"),
            models.CheckConstraint(
                condition=Q(level__gte=1, level__lte=100), name="trading_pokemon_level_1_100"
            ),
            models.CheckConstraint(condition=~Q(public_id=""), name="trading_pokemon_id_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.nickname} ({self.species})"


class Cause(models.TextChoices):
    CREATE = "create", "create"
    IMPORT = "import", "import"
    EXCHANGE = "exchange", "exchange"
    OFFER = "offer", "offer"
    ADMIN = "admin", "admin"


class OwnershipChange(models.Model):
    """One row per change of owner (the first row of a pokemon has no previous owner).

    No database foreign keys (``db_constraint=False``): a million-row import would otherwise queue four deferred
    RI trigger events per history row, fired one by one at COMMIT (about 10 s of CPU per million rows; each
    ``pokemon`` check also locks the pokemon row it just wrote). Integrity holds by construction: history rows are
    written only by the services, in the same transaction as the owner change, from pokemon rows they hold locked
    and from owners the ``pokemon.owner`` foreign key checks; deletes go through Django's ``on_delete`` handling
    (or delete history first, as the bench's ``trading_purge_prefix`` does). ``bazaar trading check`` counts dangling references.
    Indexes: only what reads and deletes use; the partial ones cost nothing for import rows (no offer, and no
    previous owner for a new pokemon). ``to_trainer`` has none: every row has one, so an index would cost every
    import about 1 s per million rows, and the only user is a trainer delete (SET_NULL, one scan of the table)."""

    pokemon = models.ForeignKey(
        Pokemon, on_delete=models.CASCADE, related_name="history", db_constraint=False, db_index=False
    )
    from_trainer = models.ForeignKey(
        Trainer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    to_trainer = models.ForeignKey(
        Trainer, null=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False, db_index=False
    )
    at = models.DateTimeField()
    cause = models.CharField(max_length=16, choices=Cause.choices)
    offer = models.ForeignKey(
        "TradeOffer",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )

    objects = FreshQuerySet["OwnershipChange"].as_manager()

    class Meta:
        ordering = ["pokemon_id", "id"]
        indexes = [
            # A pokemon's history in order; also serves the CASCADE delete by pokemon.
            models.Index(fields=["pokemon", "id"], name="trading_hist_pokemon_idx"),
            # Trainer and offer deletes set these to NULL; partial, so rows without a value are not indexed.
            models.Index(
                fields=["from_trainer"], name="trading_hist_from_idx", condition=Q(from_trainer__isnull=False)
            ),
            models.Index(fields=["offer"], name="trading_hist_offer_idx", condition=Q(offer__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.pokemon_id}: {self.from_trainer_id} -> {self.to_trainer_id} ({self.cause})"


class OfferState(models.TextChoices):
    OPEN = "open", "open"
    ACCEPTED = "accepted", "accepted"
    DECLINED = "declined", "declined"
    CANCELLED = "cancelled", "cancelled"
    EXPIRED = "expired", "expired"
    INVALID = "invalid", "invalid"


class TradeOffer(models.Model):
    """A proposes to give ``give`` pokemon for ``ask`` pokemon of B. Only ``open`` offers may change state."""

    proposer = models.ForeignKey(Trainer, on_delete=models.CASCADE, related_name="offers_made")
    receiver = models.ForeignKey(Trainer, on_delete=models.CASCADE, related_name="offers_received")
    state = models.CharField(max_length=16, choices=OfferState.choices, default=OfferState.OPEN)
    reason = models.CharField(max_length=200, blank=True)
    message = models.CharField(max_length=500, blank=True, help_text="The proposer's note to the receiver.")
    counter_to = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="counters",
        help_text="The offer this one answers (a counter-offer declines it).",
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(proposer=models.F("receiver")), name="trading_offer_not_self"
            ),
            models.CheckConstraint(
                condition=Q(state="open", decided_at__isnull=True)
                | (~Q(state="open") & Q(decided_at__isnull=False)),
                name="trading_offer_decided_iff_closed",
            ),
        ]
        indexes = [models.Index(fields=["state", "expires_at"], name="trading_offer_state_idx")]

    def __str__(self) -> str:
        return f"offer {self.pk} {self.proposer_id}->{self.receiver_id} {self.state}"


class OfferItem(models.Model):
    class Side(models.TextChoices):
        GIVE = "give", "give"
        ASK = "ask", "ask"

    offer = models.ForeignKey(TradeOffer, on_delete=models.CASCADE, related_name="items")
    pokemon = models.ForeignKey(Pokemon, on_delete=models.CASCADE, related_name="+")
    side = models.CharField(max_length=4, choices=Side.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["offer", "pokemon"], name="trading_offer_item_once")]

    def __str__(self) -> str:
        return f"{self.offer_id} {self.side} {self.pokemon_id}"


class ImportJob(Job):
    """A CSV import run by a Celery task from a stored upload. Who asked, the run's worker, heartbeat and end come
    from ``core.models.Job``; its lifecycle is ``core.jobs`` under the trading vocabulary (queued, running,
    succeeded, failed: the API's ``state``)."""

    class Kind(models.TextChoices):
        TRAINERS = "trainers", "trainers"
        POKEMON = "pokemon", "pokemon"

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    dry_run = models.BooleanField(default=False)
    path = models.CharField(max_length=500)
    size = models.BigIntegerField(default=0)
    rows_validated = models.BigIntegerField(default=0)
    rows_written = models.BigIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    errors = models.JSONField(null=True, blank=True)
    fingerprint = models.CharField(
        max_length=64,
        blank=True,
        help_text="From a preview: the job refuses (import_stale) if the rows the file touches changed since.",
    )

    lifecycle = Lifecycle(
        field="state",
        waiting=State.QUEUED,
        running=State.RUNNING,
        succeeded=State.SUCCEEDED,
        failed=State.FAILED,
    )

    class Meta(Job.Meta):
        pass

    def __str__(self) -> str:
        return f"import {self.pk} {self.kind} {self.state}"


class ImportPreview(models.Model):
    """An uploaded CSV checked without writing: per-kind totals here, the per-row entries in a JSON file beside
    the upload (``entries_path``), and a fingerprint of the database rows the file touches, so Confirm can refuse
    when they changed since."""

    class State(models.TextChoices):
        READY = "ready", "ready to confirm"
        INVALID = "invalid", "has errors"
        CONFIRMED = "confirmed", "confirmed"
        STALE = "stale", "stale (data changed since)"

    kind = models.CharField(max_length=16, choices=ImportJob.Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices)
    filename = models.CharField(max_length=200)
    path = models.CharField(max_length=500)
    size = models.BigIntegerField()
    rows = models.BigIntegerField(default=0)
    totals = models.JSONField(default=dict)
    errors = models.JSONField(null=True, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    seconds = models.FloatField(default=0)
    job = models.ForeignKey(ImportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"preview {self.pk} {self.kind} {self.state}"

    @property
    def entries_path(self) -> str:
        return f"{self.path}.preview.json"
