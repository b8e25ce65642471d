"""``bazaar rentals rent|return|overdue|export`` (and ``bench-setup``/``bench-check`` for the benchmark)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from bazaar.accounts.models import User
from bazaar.core.errors import DomainError
from bazaar.rentals import selectors, services
from bazaar.rentals.models import Copy, CopyState, Customer, ExportJob, Kind, Payment, Rental, Title

BENCH_PREFIX = "Bench customer "
BENCH_TITLE = "Bench title "


def _when(raw: str | None, *, end_of_day: bool = False) -> datetime | None:
    if not raw:
        return None
    dt = parse_datetime(raw)
    if dt is None:
        d = parse_date(raw)
        if d is None:
            raise CommandError(f"Not a date or date-time: {raw!r}")
        dt = datetime(d.year, d.month, d.day, 23 if end_of_day else 0, 59 if end_of_day else 0)
    if timezone.is_naive(dt):
        dt = timezone.make_aware(dt)
    return dt


class Command(BaseCommand):
    help = "The rental desk from the terminal: rent, return, list overdue rentals, export active rentals."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        rent = sub.add_parser("rent", help="Rent a free copy of a title (or a given copy) to a customer.")
        rent.add_argument("--customer", type=int, required=True, help="customer id")
        what = rent.add_mutually_exclusive_group(required=True)
        what.add_argument("--title", type=int, help="title id")
        what.add_argument("--copy", help="copy barcode")
        rent.add_argument("--due", help="due date (YYYY-MM-DD or ISO date-time); default: the loan period")
        rent.add_argument("--user", default="", help="staff username recorded as the clerk")
        ret = sub.add_parser("return", help="Return a rental (by id or copy barcode) and print its charge.")
        ret.add_argument("rental", nargs="?", type=int, help="rental id")
        ret.add_argument("--copy", help="copy barcode instead of a rental id")
        ret.add_argument("--at", help="backdated return time (ISO); default: now")
        ret.add_argument("--user", default="")
        ovd = sub.add_parser("overdue", help="List overdue rentals.")
        ovd.add_argument("--remind", action="store_true", help="also send the reminder e-mails now")
        exp = sub.add_parser("export", help="Export the active rentals as CSV (progress bar, summary).")
        exp.add_argument("--out", help="also copy the CSV to this path ('-' for stdout)")
        bs = sub.add_parser("bench-setup", help="Create benchmark customers, titles and copies (idempotent).")
        bs.add_argument("--customers", type=int, default=4000)
        bs.add_argument("--titles", type=int, default=8)
        bs.add_argument("--copies", type=int, default=16)
        sub.add_parser("bench-check", help="Print invariant checks for the benchmark as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "do_" + options["action"].replace("-", "_"))(options)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}")

    def _user(self, name: str) -> User | None:
        if not name:
            return None
        user = User.objects.filter(username=name, is_staff=True).first()
        if user is None:
            raise CommandError(f"No staff user named {name!r}.")
        return user

    def _print_rental(self, r: Rental) -> None:
        r = selectors.rental_get(rental_id=r.pk)
        self.stdout.write(
            f"rental {r.pk}: customer {r.customer_id} ({r.customer.name}), '{r.title.title}' copy {r.copy.barcode} "
            f"(copy id {r.copy_id}), rented {r.rented_at:%Y-%m-%d %H:%M}, due {r.due_at:%Y-%m-%d %H:%M}"
        )
        if r.returned_at is not None and r.breakdown:
            b = r.breakdown
            self.stdout.write(f"returned {r.returned_at:%Y-%m-%d %H:%M}, {b['days']} day(s)")
            for line in b["lines"]:
                self.stdout.write(f"  {line['label']:<30} {line['amount']:>8}")
            if b["minimum_applied"]:
                self.stdout.write(f"  {'minimum charge applied':<30} {b['minimum_charge']:>8}")
            if Decimal(b["fine"]):
                self.stdout.write(f"  {'fine, ' + str(b['fine_days']) + ' day(s)':<30} {b['fine']:>8}")
            self.stdout.write(f"  {'total':<30} {r.charge:>8}")

    def do_rent(self, o: dict[str, Any]) -> None:
        rental = services.rental_rent(
            customer_id=o["customer"],
            title_id=o["title"],
            barcode=o["copy"],
            due_at=_when(o["due"], end_of_day=True),
            by=self._user(o["user"]),
        )
        self._print_rental(rental)

    def do_return(self, o: dict[str, Any]) -> None:
        at, by = _when(o["at"]), self._user(o["user"])
        if o["copy"]:
            rental = services.rental_return_copy(barcode=o["copy"], returned_at=at, by=by)
        elif o["rental"]:
            rental = services.rental_return(rental_id=o["rental"], returned_at=at, by=by)
        else:
            raise CommandError("Give a rental id or --copy BARCODE.")
        self._print_rental(rental)

    def do_overdue(self, o: dict[str, Any]) -> None:
        now = timezone.now()
        rows = list(selectors.rental_list(overdue=True, now=now).order_by("due_at"))
        for r in rows:
            late = (now - r.due_at).days
            self.stdout.write(
                f"{r.pk:>7}  due {r.due_at:%Y-%m-%d}  {late:>3}d late  {r.customer.name:<24} "
                f"{r.customer.email or '-':<28} {r.copy.barcode}  {r.title.title}"
            )
        self.stdout.write(f"{len(rows)} overdue rental(s).")
        if o["remind"]:
            counts = services.reminders_send(now=now)
            self.stdout.write("reminders: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

    def do_export(self, o: dict[str, Any]) -> None:
        job = ExportJob.objects.create()
        bar = tqdm(total=0, unit="rows", file=sys.stderr, desc="export")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        job = services.export_run(job_id=job.pk, on_progress=progress)
        bar.close()
        if job.status != "done":
            raise CommandError(f"export failed: {job.error}")
        path = services.exports.export_path(job)
        if o["out"] == "-":
            self.stdout.write(path.read_text(encoding="utf-8"), ending="")
        elif o["out"]:
            with open(o["out"], "wb") as fh:
                fh.write(path.read_bytes())
        self.stderr.write(f"exported {job.done} active rental(s) to {path} (job {job.pk})")

    def do_bench_setup(self, o: dict[str, Any]) -> None:
        with transaction.atomic():
            have = Customer.objects.filter(name__startswith=BENCH_PREFIX).count()
            Customer.objects.bulk_create(
                [Customer(name=f"{BENCH_PREFIX}{i:05d}") for i in range(have, o["customers"])],
                batch_size=1000,
            )
            for i in tqdm(range(o["titles"]), desc="titles", file=sys.stderr):
                title, _ = Title.objects.get_or_create(
                    title=f"{BENCH_TITLE}{i:02d}", author="Bench", defaults={"kind": Kind.REGULAR}
                )
                missing = o["copies"] - Copy.objects.filter(title=title).count()
                if missing > 0:
                    services.copies_add(title_id=title.pk, count=missing)
        # Earlier runs left balances (and maybe open rentals after a crash): settle them so limits don't bite.
        for rental_id in Rental.objects.filter(
            title__title__startswith=BENCH_TITLE, returned_at__isnull=True
        ).values_list("pk", flat=True):
            services.rental_return(rental_id=rental_id)
        owing = []
        for cid in (
            Customer.objects.filter(name__startswith=BENCH_PREFIX).values_list("pk", flat=True).iterator()
        ):
            balance = selectors.customer_standing(customer_id=cid).balance
            if balance > 0:
                owing.append(
                    Payment(customer_id=cid, amount=balance, note="bench", received_at=timezone.now())
                )
        Payment.objects.bulk_create(owing, batch_size=1000)
        customers = list(
            Customer.objects.filter(name__startswith=BENCH_PREFIX).order_by("id").values_list("id", flat=True)
        )
        titles = list(
            Title.objects.filter(title__startswith=BENCH_TITLE).order_by("id").values_list("id", flat=True)
        )
        self.stdout.write(json.dumps({"customers": customers, "titles": titles}))

    def do_bench_check(self, o: dict[str, Any]) -> None:
        bench = Rental.objects.filter(title__title__startswith=BENCH_TITLE)
        doubles = (
            Rental.objects.filter(returned_at__isnull=True)
            .values("copy_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .count()
        )
        closed = bench.filter(returned_at__isnull=False)
        agg = closed.aggregate(
            n=Count("id"), total=Sum("charge"), missing=Count("id", filter=Q(charge__isnull=True))
        )
        rented_without_rental = (
            Copy.objects.filter(state=CopyState.RENTED).exclude(rentals__returned_at__isnull=True).count()
        )
        open_on_free_copy = (
            Rental.objects.filter(returned_at__isnull=True).exclude(copy__state=CopyState.RENTED).count()
        )
        self.stdout.write(
            json.dumps(
                {
                    "double_rentals": doubles,
                    "closed": agg["n"],
                    "charges_total": str(agg["total"] or Decimal("0.00")),
                    "closed_without_charge": agg["missing"],
                    "open": bench.filter(returned_at__isnull=True).count(),
                    "rented_copies_without_open_rental": rented_without_rental,
                    "open_rentals_on_free_copies": open_on_free_copy,
                }
            )
        )
