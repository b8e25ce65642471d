"""A PostgreSQL streaming replica for replica-safe reads (issue #20), against two real production servers on a
private primary + hot standby that replays 2 s behind (``recovery_min_apply_delay``):

* A write through server A is read back at once through server B, never older, although the replica still lacks
  it (the read went to the primary because the replica had not replayed past it: core.replica).
* Once the replica has caught up, a public list built on a cache miss is read from the replica.
* The replica stopped: reads fall back to the primary with no error.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bazaar.core.testing import wait_until
from tests.system import faultkit as fk

# Serial (make pytest runs it alone, after the parallel phase): a private primary and a standby replaying 2 s behind,
# timed; faultkit's collectstatic and var/faults.
pytestmark = pytest.mark.serial

DELAY_S = 2


@pytest.fixture(scope="module")
def rw() -> Iterator[fk.ReplicaWorld]:
    bindir = fk.pg_bindir()
    absent = fk.missing("redis-server")
    if bindir is None or not os.path.exists(os.path.join(bindir, "pg_basebackup")):
        absent.append("pg_ctl and pg_basebackup (PostgreSQL server binaries)")
    if absent:
        pytest.skip(f"replica tests need {', '.join(absent)}")
    with fk.replica_world(2, 10, f"{DELAY_S}s") as w:
        yield w


def _title(port: int, w: fk.ReplicaWorld) -> dict[str, Any]:
    status, raw = fk.get(port, f"/api/rentals/titles/{w.data['title_id']}")
    assert status == 200, raw
    return dict(json.loads(raw))


def _rent(port: int, w: fk.ReplicaWorld) -> None:
    body = {"customer_id": w.data["customers"][0], "title_id": w.data["title_id"]}
    status, raw = fk.call(
        port, "POST", "/api/rentals/rentals", body, {"Authorization": f"Bearer {w.data['token']}"}
    )
    assert status == 201, raw


def _seed_replayed(w: fk.ReplicaWorld) -> bool:
    counts = "SELECT (SELECT count(*) FROM rentals_title), (SELECT count(*) FROM rentals_rental)"
    return bool(w.replica.query(counts) == w.pg.query(counts))


def _replica_rentals(w: fk.ReplicaWorld) -> int:
    return int(w.replica.query("SELECT count(*) FROM rentals_rental")[0][0])


def _replica_title_scans(w: fk.ReplicaWorld) -> int:
    row = w.replica.query(
        "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'rentals_title'"
    )
    return int(row[0][0])


def test_a_write_through_one_server_is_never_read_older_through_the_other(rw: fk.ReplicaWorld) -> None:
    a, b = rw.ports
    wait_until(lambda: _seed_replayed(rw), DELAY_S + 30, every=0.2, what="the replica has replayed the seed")
    start = _title(b, rw)["copies_available"]
    on_replica_before = _replica_rentals(rw)
    for i in range(6):
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        _rent(writer, rw)
        for _ in range(2):  # the first read rebuilds the entry, the second is served from the cache
            assert _title(reader, rw)["copies_available"] == start - (i + 1)
    # The replica really was behind all along: it still lacks these rentals, then replays them.
    assert _replica_rentals(rw) < on_replica_before + 6
    wait_until(lambda: _replica_rentals(rw) == on_replica_before + 6, DELAY_S + 30, every=0.2)


def _caught_up(w: fk.ReplicaWorld) -> bool:
    primary = w.pg.query("SELECT pg_current_wal_lsn()::text")[0][0]
    return bool(w.replica.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [primary])[0][0])


def test_a_cache_miss_is_built_on_the_replica_once_it_has_caught_up(rw: fk.ReplicaWorld) -> None:
    a, _ = rw.ports
    for _ in range(10):  # every worker process has made its first cache connection (which writes the ledger)
        _title(a, rw)
    # Until nothing was committed on the primary for the replay delay (autovacuum commits too).
    deadline = time.monotonic() + 30
    while not _caught_up(rw) and time.monotonic() < deadline:
        time.sleep(0.2)
    scans = _replica_title_scans(rw)
    status, raw = fk.get(a, "/api/rentals/titles")  # never read before: a miss, built on the replica
    assert status == 200, raw
    deadline = time.monotonic() + 15  # an idle backend flushes its table statistics within 10 s
    while _replica_title_scans(rw) == scans and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _replica_title_scans(rw) > scans, [fk.get(a, "/readyz")[1] for _ in range(4)]


def test_replica_down_reads_fall_back_to_the_primary_without_errors(rw: fk.ReplicaWorld) -> None:
    a, b = rw.ports
    start = _title(a, rw)["copies_available"]
    rw.replica.stop("immediate")
    for i in range(6):
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        _rent(writer, rw)
        assert _title(reader, rw)["copies_available"] == start - (i + 1)
        status, _ = fk.get(reader, "/api/rentals/titles")
        assert status == 200
        status, _ = fk.get(reader, "/rentals/")
        assert status == 200
