"""``bazaar storefront_export SLUG [-o FILE] [--status S]``: a shop's orders as CSV, with a progress bar."""

from __future__ import annotations

import csv
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from bazaar.storefront import selectors
from bazaar.storefront.models import Shop
from bazaar.storefront.views.vendor import _safe_cell


class Command(BaseCommand):
    help = "Export a shop's orders as CSV (streamed; progress on stderr; a summary at the end)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
        parser.add_argument("--status", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        shop = Shop.objects.filter(slug=options["slug"]).first()
        if shop is None:
            raise CommandError(f"no shop with the link {options['slug']!r}")
        total = selectors.order_list(shop, status=options["status"]).count()
        out = sys.stdout if options["output"] == "-" else open(options["output"], "w", newline="")  # noqa: SIM115
        try:
            writer = csv.writer(out)
            rows = selectors.order_csv_rows(shop, status=options["status"])
            writer.writerow(next(rows))
            for row in tqdm(rows, total=total, unit="order", file=sys.stderr, disable=None):
                writer.writerow([_safe_cell(c) for c in row])
        finally:
            if out is not sys.stdout:
                out.close()
        self.stderr.write(f"exported {total} orders of {shop.slug} to {options['output']}")
