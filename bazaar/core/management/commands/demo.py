"""``bazaar demo``: load demo data for every app (idempotent: a second run creates nothing new)."""

from __future__ import annotations

import importlib
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

DEMO_MODULES = ["accounts", "storefront", "rentals", "trading", "kvstore"]
#: The address the apps' demo lines are written for; ``--base-url`` prints them for the server actually started.
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class Command(BaseCommand):
    help = "Load demo data for every app (idempotent) and print the URLs and logins to try."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--base-url",
            default=DEFAULT_BASE_URL,
            help=f"where the server answers, for the printed links and curl examples (default {DEFAULT_BASE_URL})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        base = str(options["base_url"]).rstrip("/")
        lines: list[str] = []
        for app in DEMO_MODULES:
            module = importlib.import_module(f"bazaar.{app}.demo")
            with transaction.atomic():
                lines.extend(module.load())
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        for line in lines:
            self.stdout.write(line.replace(DEFAULT_BASE_URL, base))
