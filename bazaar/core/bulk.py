"""Bulk writes whose foreign keys the caller has already proven: PostgreSQL's per-row checks skipped, safely.

PostgreSQL checks a foreign key with a trigger per inserted row: one SPI query and one ``FOR KEY SHARE`` lock on
the referenced row each. In a million-row import that is a million lookups of rows the import has already checked
with one set-based join and locked for the rest of its transaction (the KV import holds its tenant row ``FOR
UPDATE``; the trading import holds every owner the file names ``FOR KEY SHARE``, the very lock each check would
take). Those checks cannot fail, and they cost a quarter to a third of the import (measured: about 4 s per million
rows and foreign key here).

:func:`referenced_rows_locked` runs one such statement with ``session_replication_role = replica``, PostgreSQL's
own switch for loading data whose integrity is already known (``pg_restore --disable-triggers`` uses it): RI
triggers do not fire, for this statement alone. The switch is ``SET LOCAL`` inside a savepoint, set back to
``origin`` right after the statement; if the statement fails, rolling the savepoint back undoes it too, so it never
outlives the block, whatever the caller does with the error. The constraints themselves stay in the schema, valid,
and every other writer is checked by them as before.

Setting the parameter needs a superuser, or on PostgreSQL 15+ ``GRANT SET ON PARAMETER session_replication_role``.
A role without it gets the checks, as before (the block yields False): slower, never less safe. Disabling triggers
per table instead (``ALTER TABLE … DISABLE TRIGGER``) would take ``ACCESS EXCLUSIVE`` on the table and stall every
reader for the whole import; dropping and re-adding the constraint likewise (docs/design-notes.md).
Only use it where no trigger other than the foreign keys' is expected: replica mode silences every ordinary
trigger of the statement (Bazaar defines none).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import connection, transaction

#: Whether the role may set session_replication_role: superuser, or (PostgreSQL 15+) granted SET on it.
_MAY_SET = "SELECT current_setting('is_superuser') = 'on'"
_MAY_SET_15 = _MAY_SET + " OR has_parameter_privilege('session_replication_role', 'SET')"


def may_skip_reference_checks(cur: Any) -> bool:
    """Whether this connection's role may turn the per-row foreign key checks off (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        return False
    version = int(getattr(connection, "pg_version", 0))
    cur.execute(_MAY_SET_15 if version >= 150000 else _MAY_SET)
    row = cur.fetchone()
    return bool(row and row[0])


@contextlib.contextmanager
def referenced_rows_locked(cur: Any, may: bool | None = None) -> Iterator[bool]:
    """Run the block's statements without PostgreSQL's per-row foreign key checks, where the role may.

    The caller vouches that every row the block writes references rows that exist and that its transaction holds
    locked against deletion and key changes until it ends. Yields whether the checks are off (False elsewhere:
    SQLite, or a role without the privilege, where the statements are checked as usual). Must run inside a
    transaction (``transaction.atomic``). ``may``: :func:`may_skip_reference_checks`' answer, when the caller
    asked once for many blocks (it cannot change within a transaction)."""
    if not (may_skip_reference_checks(cur) if may is None else may):
        yield False
        return
    with transaction.atomic(savepoint=True):
        cur.execute("SET LOCAL session_replication_role = replica")
        yield True
        cur.execute("SET LOCAL session_replication_role = origin")
