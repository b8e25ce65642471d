"""The ``bazaar`` console script: Django management commands with Bazaar's settings.

``bazaar demo``, ``bazaar kvadmin tenants list``, ``bazaar trading import FILE`` ... are ``manage.py <command> ...``;
``bazaar kv …`` is the key-value store's HTTP client (``bazaar.kvstore.cli``), which needs no settings or database.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["kv"]:
        from bazaar.kvstore.cli import main as kv_main

        sys.exit(kv_main(sys.argv[2:]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bazaar.config.settings.base")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["bazaar", *sys.argv[1:]])


if __name__ == "__main__":
    main()
