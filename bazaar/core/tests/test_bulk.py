"""core.bulk: a bulk statement whose references the caller proved runs without PostgreSQL's per-row FK checks,
for that statement alone, and only where the role may turn them off."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from bazaar.core import bulk

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

#: A row whose tenant does not exist: the entry table's foreign key refuses it.
_DANGLING = (
    "INSERT INTO kvstore_entry (tenant_id, key, value, version, created_at, updated_at, mod_revision) "
    "VALUES (-1, %s, '1', 1, now(), now(), 0)"
)


def _role(cur: Any) -> str:
    cur.execute("SELECT current_setting('session_replication_role')")
    return str(cur.fetchone()[0])


def _checked(cur: Any) -> bool:
    """Whether the pending dangling rows are refused when the deferred checks are asked for now."""
    try:
        with transaction.atomic():
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
    except IntegrityError:
        return True
    cur.execute("SET CONSTRAINTS ALL DEFERRED")  # as Django's constraints are declared
    return False


def test_inside_the_block_rows_are_not_checked_and_after_it_they_are_again() -> None:
    with transaction.atomic(), connection.cursor() as cur:
        with bulk.referenced_rows_locked(cur) as skipped:
            assert skipped  # the test database's role is a superuser
            assert _role(cur) == "replica"
            cur.execute(_DANGLING, ["inside"])
        assert _role(cur) == "origin"
        assert not _checked(cur)  # the row written inside queued no check at all
        cur.execute(_DANGLING, ["after"])
        assert _checked(cur)  # a row written after the block is checked as ever
        transaction.set_rollback(True)


def test_a_failing_statement_leaves_the_checks_on_for_the_rest_of_the_transaction() -> None:
    with transaction.atomic(), connection.cursor() as cur:
        with pytest.raises(IntegrityError), bulk.referenced_rows_locked(cur):
            cur.execute(_DANGLING, ["same"])
            cur.execute(_DANGLING, ["same"])  # unique (tenant, key): the statement fails inside the block
        assert _role(cur) == "origin"
        cur.execute(_DANGLING, ["later"])
        assert _checked(cur)
        transaction.set_rollback(True)
    assert not connection.cursor().execute("SELECT 1 FROM kvstore_entry WHERE tenant_id = -1").fetchall()


def _plain_role(cur: Any, name: str, grant: bool) -> None:
    """A role that is no superuser (cluster-wide; created once, whichever test database gets there first)."""
    cur.execute(
        f"DO $$ BEGIN CREATE ROLE {name} NOLOGIN; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )
    if grant:
        cur.execute(f"GRANT SET ON PARAMETER session_replication_role TO {name}")


@pytest.mark.parametrize(
    ("name", "grant"), [("bazaar_test_bulk_plain", False), ("bazaar_test_bulk_granted", True)]
)
def test_a_role_without_the_privilege_keeps_the_checks(name: str, grant: bool) -> None:
    if grant and int(getattr(connection, "pg_version", 0)) < 150000:
        pytest.skip("GRANT SET ON PARAMETER is PostgreSQL 15+")
    with connection.cursor() as cur:
        _plain_role(cur, name, grant)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"SET LOCAL ROLE {name}")
        assert bulk.may_skip_reference_checks(cur) is grant
        if not grant:
            with bulk.referenced_rows_locked(cur) as skipped:
                assert not skipped
                assert _role(cur) == "origin"
        transaction.set_rollback(True)


def test_elsewhere_than_postgresql_nothing_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "vendor", "sqlite")
    assert bulk.may_skip_reference_checks(None) is False
