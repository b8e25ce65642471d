"""``bazaar rentals rent|return|overdue|export``. (The benchmark's fixtures and checks: ``python -m bench.setup``.)"""

from __future__ import annotations

import sys
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from bazaar.accounts.models import User
from bazaar.core.errors import DomainError
from bazaar.rentals import selectors, services
from bazaar.rentals.models import ExportJob, Rental


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
