"""``bazaar storefront_bench_shop``: create or reset the benchmark shop and print its product ids as JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from bazaar.storefront.demo import bench_shop


class Command(BaseCommand):
    help = "Create or reset the benchmark shop 'bench-shop' (no orders; Race=100, Bulk=10M in stock)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--race-stock", type=int, default=100)
        parser.add_argument("--bulk-stock", type=int, default=10_000_000)

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            ids = bench_shop(race_stock=options["race_stock"], bulk_stock=options["bulk_stock"])
        self.stdout.write(json.dumps(ids))
