"""Rentals data: titles and their physical copies, customers, price plans, rentals, payments, holds,
reminders sent and export jobs. Invariants live in constraints: a copy is in at most one open rental, a
closed rental always has its charge, money is never negative, a reminder is recorded once per rental and day."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from bazaar.core.freshness import FreshQuerySet
from bazaar.core.models import Job, Lifecycle


class Kind(models.TextChoices):
    REGULAR = "regular", "Regular"
    FICTION = "fiction", "Fiction"
    NOVEL = "novel", "Novel"


class CopyState(models.TextChoices):
    AVAILABLE = "available", "Available"
    RENTED = "rented", "Rented"
    ON_HOLD = "on_hold", "On the hold shelf"  # put aside for the patron first in the title's queue
    LOST = "lost", "Lost"
    WITHDRAWN = "withdrawn", "Withdrawn"


class CustomerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    BLOCKED = "blocked", "Blocked"


class PricePlan(models.Model):
    """The current prices for one kind of title. Rentals copy the terms when they start (``Rental.terms``)."""

    kind = models.CharField(max_length=16, choices=Kind.choices, unique=True)
    daily_rate = models.DecimalField(max_digits=8, decimal_places=2)
    intro_days = models.PositiveIntegerField(default=0, help_text="Days charged at the introductory rate.")
    intro_rate = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0.00"))
    minimum_charge = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0.00"))
    minimum_below_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="The minimum applies only below this many days (empty: always)."
    )
    loan_days = models.PositiveIntegerField(default=14, help_text="Default loan period in days.")
    fine_per_day = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0.00"))
    fine_grace_days = models.PositiveIntegerField(default=0)
    fine_cap = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind"]
        constraints = [
            models.CheckConstraint(
                condition=Q(daily_rate__gte=0)
                & Q(intro_rate__gte=0)
                & Q(minimum_charge__gte=0)
                & Q(fine_per_day__gte=0)
                & (Q(fine_cap__isnull=True) | Q(fine_cap__gte=0)),
                name="rentals_plan_money_not_negative",
            ),
            models.CheckConstraint(condition=Q(loan_days__gte=1), name="rentals_plan_loan_days_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} plan"


class Title(models.Model):
    title = models.CharField(max_length=300)
    author = models.CharField(max_length=200)
    isbn = models.CharField(max_length=13, null=True, blank=True, unique=True, help_text="ISBN-10 or 13.")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.REGULAR)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = FreshQuerySet["Title"].as_manager()

    class Meta:
        ordering = ["title", "id"]
        indexes = [models.Index(fields=["author"], name="rentals_title_author")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in Kind]), name="rentals_title_kind_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.author})"


class Copy(models.Model):
    """One physical copy. ``state`` says whether it can be rented; ``rented`` matches an open rental."""

    title = models.ForeignKey(Title, on_delete=models.PROTECT, related_name="copies")
    barcode = models.CharField(max_length=32, unique=True)
    state = models.CharField(max_length=16, choices=CopyState.choices, default=CopyState.AVAILABLE)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = FreshQuerySet["Copy"].as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "copies"
        indexes = [models.Index(fields=["title", "state"], name="rentals_copy_title_state")]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in CopyState]), name="rentals_copy_state_valid"
            )
        ]

    def __str__(self) -> str:
        return self.barcode


class Customer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True, default="")
    phone = models.CharField(max_length=40, blank=True, default="")
    status = models.CharField(max_length=16, choices=CustomerStatus.choices, default=CustomerStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    # The patron's own sign-in (their account page): one user account per library card, optional.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rentals_customer",
    )
    keep_history = models.BooleanField(
        default=True, help_text="Show the patron their past loans (they can turn it off on their account)."
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in CustomerStatus]),
                name="rentals_customer_status_valid",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Rental(models.Model):
    """A copy lent to a customer. Open while ``returned_at`` is null; closing it stores the charge."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="rentals")
    copy = models.ForeignKey(Copy, on_delete=models.PROTECT, related_name="rentals")
    title = models.ForeignKey(Title, on_delete=models.PROTECT, related_name="rentals")
    rented_at = models.DateTimeField()
    due_at = models.DateTimeField()
    returned_at = models.DateTimeField(null=True, blank=True)
    renewals = models.PositiveIntegerField(default=0)
    terms = models.JSONField(help_text="The price plan's terms when the rental started.")
    charge = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    breakdown = models.JSONField(null=True, blank=True)
    rented_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    returned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = FreshQuerySet["Rental"].as_manager()

    class Meta:
        ordering = ["-rented_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "returned_at"], name="rentals_rental_customer_open"),
            models.Index(fields=["returned_at", "due_at"], name="rentals_rental_open_due"),
        ]
        constraints = [
            # The invariant of the whole desk: a copy is never in two open rentals.
            models.UniqueConstraint(
                fields=["copy"],
                condition=Q(returned_at__isnull=True),
                name="rentals_one_open_rental_per_copy",
            ),
            models.CheckConstraint(condition=Q(due_at__gt=F("rented_at")), name="rentals_due_after_rent"),
            models.CheckConstraint(
                condition=Q(returned_at__isnull=True) | Q(returned_at__gte=F("rented_at")),
                name="rentals_return_not_before_rent",
            ),
            # No lost charges: a closed rental always carries its charge, an open one never does.
            models.CheckConstraint(
                condition=(Q(returned_at__isnull=True) & Q(charge__isnull=True))
                | (Q(returned_at__isnull=False) & Q(charge__isnull=False) & Q(charge__gte=0)),
                name="rentals_closed_has_charge",
            ),
        ]

    def __str__(self) -> str:
        return f"rental {self.pk}"

    @property
    def is_open(self) -> bool:
        return self.returned_at is None


class PaymentMethod(models.TextChoices):
    CASH = "cash", "Cash"
    CARD = "card", "Card"
    MOBILE = "mobile", "Mobile money"
    OTHER = "other", "Other"


class Payment(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    method = models.CharField(max_length=16, choices=PaymentMethod.choices, default=PaymentMethod.CASH)
    note = models.CharField(max_length=200, blank=True, default="")
    received_at = models.DateTimeField()
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="rentals_payment_positive"),
            models.CheckConstraint(
                condition=Q(method__in=[m.value for m in PaymentMethod]), name="rentals_payment_method_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} from {self.customer_id}"


class Hold(models.Model):
    """A customer waiting for a title. While one is active, other customers' rentals of it cannot be renewed."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="holds")
    title = models.ForeignKey(Title, on_delete=models.CASCADE, related_name="holds")
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Set when a returned copy is put aside for this hold (the pickup notice goes out then); the hold lapses at
    # ``expires_at`` if nobody collects it.
    ready_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # The copy put aside for this hold (state ``on_hold``): only this hold's patron can borrow it.
    copy = models.ForeignKey(Copy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = FreshQuerySet["Hold"].as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "title"],
                condition=Q(closed_at__isnull=True),
                name="rentals_one_active_hold",
            )
        ]

    def __str__(self) -> str:
        return f"hold {self.pk}"


class ReminderKind(models.TextChoices):
    DUE_TOMORROW = "due_tomorrow", "Due tomorrow"
    OVERDUE = "overdue", "Overdue"


class ReminderSent(models.Model):
    """Proof a reminder went out; the unique key makes the periodic task idempotent per rental and day."""

    rental = models.ForeignKey(Rental, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=16, choices=ReminderKind.choices)
    day = models.DateField()
    email = models.EmailField()
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rental", "kind", "day"], name="rentals_reminder_once_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.kind} reminder for rental {self.rental_id} on {self.day}"


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ExportJob(Job):
    """A CSV export of the active rentals, written by a Celery task under MEDIA_ROOT. Who asked, the run's
    worker, heartbeat and end come from ``core.models.Job``; its lifecycle is ``core.jobs`` under the rentals
    vocabulary (pending, running, done, failed: the API's ``status``)."""

    lifecycle = Lifecycle(
        field="status",
        waiting=ExportStatus.PENDING,
        running=ExportStatus.RUNNING,
        succeeded=ExportStatus.DONE,
        failed=ExportStatus.FAILED,
    )

    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    file = models.CharField(max_length=300, blank=True, default="", help_text="Path under MEDIA_ROOT.")
    error = models.TextField(blank=True, default="")

    class Meta(Job.Meta):
        pass

    def __str__(self) -> str:
        return f"export {self.pk} ({self.status})"

    @property
    def progress(self) -> float:
        if self.status == ExportStatus.DONE:
            return 1.0
        return round(self.done / self.total, 4) if self.total else 0.0
