"""``bazaar demo``: load demo data for every app (idempotent: a second run creates nothing new)."""

from __future__ import annotations

import importlib
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

DEMO_MODULES = ["accounts", "storefront", "rentals", "trading", "kvstore"]


class Command(BaseCommand):
    help = "Load demo data for every app (idempotent) and print the URLs and logins to try."

    def handle(self, *args: Any, **options: Any) -> None:
        lines: list[str] = []
        for app in DEMO_MODULES:
            module = importlib.import_module(f"bazaar.{app}.demo")
            with transaction.atomic():
                lines.extend(module.load())
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        for line in lines:
            self.stdout.write(line)
