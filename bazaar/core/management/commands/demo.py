"""``bazaar demo``: load demo data for every app (idempotent: a second run creates nothing new)."""

from __future__ import annotations

import importlib
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

DEMO_MODULES = ["accounts", "storefront", "rentals", "trading", "kvstore"]
#: The address the apps' demo lines are written for; they are printed for ``--base-url`` (the server actually
#: started) or else ``SITE_URL`` (the public address).
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class Command(BaseCommand):
    help = "Load demo data for every app (idempotent) and print the URLs and logins to try."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--base-url",
            default="",
            help="where the server answers, for the printed links and curl examples (default: SITE_URL)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        base = str(options["base_url"] or settings.SITE_URL).rstrip("/")
        lines: list[str] = []
        for app in DEMO_MODULES:
            module = importlib.import_module(f"bazaar.{app}.demo")
            with transaction.atomic():
                lines.extend(module.load())
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        for line in lines:
            self.stdout.write(line.replace(DEFAULT_BASE_URL, base))
