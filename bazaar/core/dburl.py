"""PostgreSQL addresses as libpq spells them, for the settings (parse only: imported before Django is set up).

libpq's URI form names a Unix-domain socket directory as a percent-encoded host
(``postgresql://user@%2Frun%2Fpostgresql/db``: PostgreSQL on this host without TCP); django-environ hands that host
on still encoded, and psycopg would look it up as a host name and fail every connection.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote


def socket_host(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (a Django database dict from a URL) with a percent-encoded host decoded (a socket directory)."""
    host = config.get("HOST")
    if isinstance(host, str) and "%" in host:
        config["HOST"] = unquote(host)
    return config
