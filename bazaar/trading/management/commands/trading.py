"""``bazaar trading import FILE [--kind trainers|pokemon] [--dry-run] [--json]`` and friends.

Subcommands: ``import`` (streaming all-or-nothing CSV import with a progress bar on stderr), ``expire-offers``,
``check`` (invariants: one owner each, history agrees with owners). Bench fixtures: ``python -m bench.setup``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from bazaar.core.errors import DomainError
from bazaar.trading import services
from bazaar.trading.services.imports import Progress


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM), in MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Command(BaseCommand):
    help = "Trading tools: import CSV files, expire offers, check invariants."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="Import a trainers or pokemon CSV (all or nothing).")
        imp.add_argument("file")
        imp.add_argument(
            "--kind", choices=["trainers", "pokemon"], default=None, help="default: from the header"
        )
        imp.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
        imp.add_argument(
            "--json", action="store_true", help="print the summary as JSON (with time and peak RSS)"
        )
        imp.add_argument("--no-progress", action="store_true")
        sub.add_parser("expire-offers", help="Mark open offers past their expiry as expired.")
        sub.add_parser("check", help="Check invariants; exit 1 on any violation.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "import":
            self._import(options)
        elif action == "expire-offers":
            self.stdout.write(f"expired {services.offers_expire()} offer(s)")
        elif action == "check":
            from bazaar.trading.checks import invariants

            report = invariants()
            self.stdout.write(json.dumps(report))
            if report["violations"]:
                raise CommandError(f"{report['violations']} invariant violation(s)")

    def _import(self, options: dict[str, Any]) -> None:
        path = options["file"]
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}")
        bar = tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc="validating",
            file=sys.stderr,
            disable=options["no_progress"],
        )
        done = [0]

        def progress(p: Progress) -> None:
            bar.set_description(p.phase)
            bar.set_postfix(rows=p.rows, refresh=False)
            bar.update(p.bytes_read - done[0])
            done[0] = p.bytes_read

        started = time.perf_counter()
        try:
            with open(path, "rb") as source:
                result = services.import_csv(
                    source=source, kind=options["kind"], dry_run=options["dry_run"], progress=progress
                )
        except DomainError as exc:
            bar.close()
            payload = exc.as_dict()
            if options["json"]:
                self.stdout.write(json.dumps({"ok": False, **payload}))
            else:
                self.stderr.write(f"import refused ({exc.code}): {exc.message}")
                details = exc.details or {}
                for err in (details.get("errors") or [])[:20] if isinstance(details, dict) else []:
                    self.stderr.write(f"  row {err['row']} {err['column']}: {err['message']}")
                if isinstance(details, dict) and details.get("error_count", 0) > 20:
                    self.stderr.write(f"  ... {details['error_count']} errors in total")
            raise CommandError("nothing was imported")
        bar.close()
        summary = {
            "ok": True,
            **result.as_dict(),
            "wall_s": round(time.perf_counter() - started, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "file_bytes": size,
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            verb = "would create" if result.dry_run else "created"
            self.stdout.write(
                f"{result.kind}: {result.rows} rows, {verb} {result.created}, "
                f"{'would update' if result.dry_run else 'updated'} {result.updated}, "
                f"{result.history_rows} ownership changes, {summary['wall_s']} s, peak RSS {summary['peak_rss_mb']} MB"
            )
