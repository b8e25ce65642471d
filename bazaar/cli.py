"""The ``bazaar`` console script: Django management commands with Bazaar's settings.

``bazaar demo``, ``bazaar kv get KEY``, ``bazaar trading import FILE`` ... are ``manage.py <command> ...``.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bazaar.config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["bazaar", *sys.argv[1:]])


if __name__ == "__main__":
    main()
