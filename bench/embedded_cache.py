"""Which shared cache for the embedded default? The hit path's cost (an MGET of epoch, generation and entry) and a
generation bump, measured in-process for each candidate that every process on the machine can share: Bazaar's
SqliteBackend (one SQLite file, WAL), Django's DatabaseCache (a table in its own SQLite file) and Django's
FileBasedCache. The old in-process LocMemCache is measured as the floor it cannot share.

    .venv/bin/python bench/embedded_cache.py   ->  bench/results/micro/embedded_cache.json
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bazaar.config.settings.base")

N = 20_000
BODY = b"x" * 8_000  # about a cached store page


def _time(fn: Any, n: int = N) -> float:
    """Median microseconds per call over five batches."""
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n // 5):
            fn()
        runs.append((time.perf_counter() - t) / (n // 5) * 1e6)
    return statistics.median(runs)


def main() -> None:
    import django

    django.setup()
    from django.core.cache.backends.db import DatabaseCache
    from django.core.cache.backends.filebased import FileBasedCache
    from django.core.cache.backends.locmem import LocMemCache

    from bazaar.core.cache.backends import SqliteBackend

    tmp = Path(tempfile.mkdtemp(prefix="bazaar-ecb-"))
    keys = ["p:epoch", "p:s:gen", "p:s:html"]
    out: dict[str, Any] = {}

    sq = SqliteBackend(tmp / "cache.sqlite3")
    for k in keys:
        sq.set(k, BODY if k.endswith("html") else b"12345", 600)
    out["sqlite_backend"] = {
        "hit_mget_us": _time(lambda: sq.mget(keys)),
        "bump_us": _time(lambda: sq.incr_many(["p:s:gen"], 600), 5_000),
        "shared_across_processes": True,
    }

    fb = FileBasedCache(str(tmp / "files"), {})
    for k in keys:
        fb.set(k.replace(":", "_"), BODY, 600)
    fkeys = [k.replace(":", "_") for k in keys]
    out["django_filebased"] = {
        "hit_mget_us": _time(lambda: fb.get_many(fkeys), 5_000),
        "bump_us": _time(lambda: fb.set("p_s_gen", b"1", 600), 2_000),
        "shared_across_processes": True,
        "note": "incr is get+set (not atomic across processes)",
    }

    from django.db import connections

    db_path = tmp / "dbcache.sqlite3"
    connections.databases["ecb"] = {
        **connections.databases["default"],
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(db_path),
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;"},
    }
    dc = DatabaseCache("bazaar_cache", {})
    from django.core.management import call_command

    call_command("createcachetable", "bazaar_cache", database="ecb", verbosity=0)
    dc._db = "ecb"  # type: ignore[attr-defined]

    class Router:
        def db_for_read(self, *_: Any, **__: Any) -> str:
            return "ecb"

        db_for_write = db_for_read

    from django.db import router

    router.routers.insert(0, Router())
    for k in keys:
        dc.set(k, BODY if k.endswith("html") else 12345, 600)
    out["django_database_cache"] = {
        "hit_mget_us": _time(lambda: dc.get_many(keys), 5_000),
        "bump_us": _time(lambda: dc.incr("p:s:gen"), 2_000),
        "shared_across_processes": True,
        "note": "incr is get+set in a transaction; values pickled",
    }

    lm = LocMemCache("ecb", {})
    for k in keys:
        lm.set(k, BODY if k.endswith("html") else 12345, 600)
    out["locmem_not_shared"] = {
        "hit_mget_us": _time(lambda: lm.get_many(keys)),
        "bump_us": _time(lambda: lm.incr("p:s:gen")),
        "shared_across_processes": False,
    }
    result = {
        "scenario": "embedded_cache",
        "unit": "microseconds per call (median of 5 batches)",
        "results": out,
    }
    path = (
        ROOT / "bench" / "results" / "micro" / "embedded_cache.json"
    )  # not a load scenario: kept out of REPORT.md
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
