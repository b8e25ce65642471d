"""The writer matrix: for every model a cached surface depends on, and every kind of writer that exists for it
(service, queryset, admin change/inline/bulk action, management command, raw-SQL hot path over HTTP), write and
assert that the next read **through another process** (server B) is fresh: byte-for-byte what Django builds from
the database now (the oracle, in an empty cache namespace).

Runs on the embedded default (SQLite + the shared SQLite cache: the writer process and the CLI are other processes
than the server, so this is also the "a CLI write is seen by the running server" test) and, in CI, on PostgreSQL +
Redis. ``test_surfaces.py`` fails when an admin or command appears that has no row here.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.system import freshkit

# Serial (make pytest runs it alone, after the parallel phase): production servers on freshkit's collectstatic into
# the one STATIC_ROOT and var/fresh.
pytestmark = pytest.mark.serial

STORE = ["/s/fresh-shop/"]
CATALOGUE = ["/rentals/", "/api/rentals/titles", "/rentals/titles/{title}/", "/api/rentals/titles/{title}"]
TRADING = ["/trading/", "/api/trading/trainers", "/api/trading/pokemon", "/api/trading/pokemon/fp01/history"]
KV = ["kv:/api/kv/keys/greeting"]


@dataclass
class Row:
    name: str
    model: str
    writer: str
    reads: list[str]
    op: str | None = None
    run: Callable[[freshkit.World], None] | None = None
    args: dict[str, Any] = field(default_factory=dict)


def _cli(*args: str) -> Callable[[freshkit.World], None]:
    def run(w: freshkit.World) -> None:
        w.manage(*(a.format(**w.data) for a in args))

    return run


def _bench_shop(w: freshkit.World) -> None:
    w.bench_setup("storefront-shop")


def _order(w: freshkit.World) -> None:
    status, body = freshkit.send(
        w.a.port,
        "POST",
        "/api/storefront/stores/fresh-shop/orders",
        {
            "items": [{"product_id": w.data["tea"], "quantity": 2}],
            "customer_name": "Fresh Buyer",
            "phone": "+91 98765 43210",
            "address": "1 Fresh Street",
        },
        {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert status == 201, body


def _rent_and_return(w: freshkit.World) -> None:
    auth = {"Authorization": f"Bearer {w.data['token']}"}
    status, body = freshkit.send(
        w.a.port, "POST", "/api/rentals/rentals", {"customer_id": w.data["customer"], "barcode": "FR-1"}, auth
    )
    assert status == 201, body
    w.data["rental"] = body["id"]


def _return(w: freshkit.World) -> None:
    auth = {"Authorization": f"Bearer {w.data['token']}"}
    status, body = freshkit.send(
        w.a.port, "POST", f"/api/rentals/rentals/{w.data['rental']}/return", {}, auth
    )
    assert status == 200, body


def _kv_put(w: freshkit.World) -> None:
    auth = {"Authorization": f"Bearer {w.data['kv_key']}"}
    status, body = freshkit.send(w.a.port, "PUT", "/api/kv/keys/greeting", {"value": uuid.uuid4().hex}, auth)
    assert status in (200, 201), body


def _kv_txn(w: freshkit.World) -> None:
    auth = {"Authorization": f"Bearer {w.data['kv_key']}"}
    ops = {"success": [{"op": "put", "key": "greeting", "value": uuid.uuid4().hex}]}
    status, body = freshkit.send(w.a.port, "POST", "/api/kv/txn", ops, auth)
    assert status == 200, body


def _import_pokemon(w: freshkit.World) -> None:
    path = Path(tempfile.gettempdir()) / f"fresh-{uuid.uuid4().hex[:8]}.csv"
    path.write_text(
        "id,nickname,species,level,owner,dateOfOwnership\n"
        f"fp03,Imported{uuid.uuid4().hex[:4]},Bulbasaur,3,fr01,01-01-2021\n"
    )
    try:
        w.manage("trading", "import", str(path), "--no-progress")
    finally:
        path.unlink()


ROWS: list[Row] = [
    # storefront: the public store page depends on shops and products
    Row("product via service", "storefront.Product", "service", STORE, op="product_service"),
    Row("product via queryset update", "storefront.Product", "queryset", STORE, op="product_queryset"),
    Row("product via bulk_create", "storefront.Product", "queryset", STORE, op="product_bulk_create"),
    Row("product via admin change", "storefront.Product", "admin", STORE, op="product_admin_change"),
    Row(
        "product via admin bulk delete",
        "storefront.Product",
        "admin",
        STORE,
        op="product_admin_delete_action",
    ),
    Row(
        "product via shop admin inline",
        "storefront.Product",
        "admin-inline",
        STORE,
        op="shop_admin_inline_product",
    ),
    Row("product stock via raw-SQL order (fast path)", "storefront.Product", "raw", STORE, run=_order),
    Row("shop via service", "storefront.Shop", "service", STORE, op="shop_service"),
    Row("shop via admin change", "storefront.Shop", "admin", STORE, op="shop_admin_change"),
    Row("shop via queryset update", "storefront.Shop", "queryset", STORE, op="shop_queryset"),
    # Not a product command (bench/setup.py), but a writer all the same: it must invalidate like one.
    Row("bench shop setup", "storefront.Product", "bench", STORE, run=_bench_shop),
    # rentals: the catalogue and title pages depend on titles and copies
    Row("title via service", "rentals.Title", "service", CATALOGUE, op="title_service"),
    Row("title via admin change", "rentals.Title", "admin", CATALOGUE, op="title_admin_change"),
    Row("title via queryset update", "rentals.Title", "queryset", CATALOGUE, op="title_queryset"),
    Row(
        "copy via title admin inline", "rentals.Copy", "admin-inline", CATALOGUE, op="title_admin_inline_copy"
    ),
    Row("copy via service", "rentals.Copy", "service", CATALOGUE, op="copy_service"),
    Row("copy via admin change", "rentals.Copy", "admin", CATALOGUE, op="copy_admin_change"),
    Row("copy via queryset update", "rentals.Copy", "queryset", CATALOGUE, op="copy_queryset"),
    Row("copy rented via raw-SQL API (fast path)", "rentals.Copy", "raw", CATALOGUE, run=_rent_and_return),
    Row("copy returned via raw-SQL API (fast path)", "rentals.Copy", "raw", CATALOGUE, run=_return),
    Row("hold placed via service", "rentals.Hold", "service", CATALOGUE, op="hold_service"),
    Row("hold deleted via admin bulk action", "rentals.Hold", "admin", CATALOGUE, op="hold_admin_delete"),
    Row("rental admin (read-only) saved", "rentals.Rental", "admin", CATALOGUE, op="rental_admin_save"),
    Row("hold closed via queryset update", "rentals.Hold", "queryset", CATALOGUE, op="hold_queryset"),
    Row("rental due date via queryset update", "rentals.Rental", "queryset", CATALOGUE, op="rental_queryset"),
    Row(
        "copy rented via CLI",
        "rentals.Copy",
        "command",
        CATALOGUE,
        run=_cli("rentals", "rent", "--customer", "{customer}", "--copy", "FR-2"),
    ),
    Row(
        "copy returned via CLI",
        "rentals.Copy",
        "command",
        CATALOGUE,
        run=_cli("rentals", "return", "--copy", "FR-2"),
    ),
    # trading: trainer and pokemon reads depend on trainers, pokemon and their history
    Row("trainer via service", "trading.Trainer", "service", TRADING, op="trainer_service"),
    Row("trainer via admin change", "trading.Trainer", "admin", TRADING, op="trainer_admin_change"),
    Row("trainer via queryset update", "trading.Trainer", "queryset", TRADING, op="trainer_queryset"),
    Row("pokemon via service", "trading.Pokemon", "service", TRADING, op="pokemon_service"),
    Row("pokemon via admin change", "trading.Pokemon", "admin", TRADING, op="pokemon_admin_change"),
    Row(
        "pokemon owners via exchange (queryset + bulk history)",
        "trading.OwnershipChange",
        "service",
        TRADING,
        op="exchange_service",
    ),
    Row("pokemon via CLI import (raw COPY)", "trading.Pokemon", "command", TRADING, run=_import_pokemon),
    # kvstore: an entry read depends on its entry; a key's validity on the key
    Row("entry via raw-SQL PUT (fast path)", "kvstore.Entry", "raw", KV, run=_kv_put),
    Row("entry via txn (raw SQL under the tenant lock)", "kvstore.Entry", "raw", KV, run=_kv_txn),
    Row(
        "entry via CLI set",
        "kvstore.Entry",
        "command",
        KV,
        run=_cli("kvadmin", "set", "--tenant", "fresh", "greeting", '"from the CLI"'),
    ),
    Row("entry via service delete and set", "kvstore.Entry", "service", KV, op="entry_service_delete"),
    Row("entry admin is read-only", "kvstore.Entry", "admin", KV, op="entry_admin_refused"),
    Row("entry via queryset update", "kvstore.Entry", "queryset", KV, op="entry_queryset"),
    Row(
        "api key revoked via admin action",
        "kvstore.TenantApiKey",
        "admin",
        ["kv2:/api/kv/keys/greeting"],
        op="apikey_admin_revoke",
    ),
    # accounts: a verified bearer token's flag depends on the token and its user
    Row(
        "token revoked via admin",
        "accounts.ApiToken",
        "admin",
        ["doomed:/api/accounts/me"],
        op="token_admin_revoke",
    ),
    Row(
        "token revoked via CLI",
        "accounts.ApiToken",
        "command",
        ["token:/api/accounts/me"],
        run=_cli("token", "revoke", "fresh-admin", "{token_id}"),
    ),
    Row(
        "user deactivated via admin",
        "accounts.User",
        "admin",
        ["vendor:/api/accounts/me"],
        op="user_admin_demote",
    ),
    # the demo command writes every app
    Row("demo command", "rentals.Title", "command", ["/", "/rentals/", "/trading/"], run=_cli("demo")),
]

#: Admins (and inlines) that write a watched model -> the rows that exercise them (test_surfaces checks the keys).
ADMIN_ROWS: dict[str, list[str]] = {
    "storefront.Shop": ["shop via admin change"],
    "storefront.Product": ["product via admin change", "product via admin bulk delete"],
    "storefront.Shop>storefront.Product": ["product via shop admin inline"],
    "rentals.Title": ["title via admin change"],
    "rentals.Title>rentals.Copy": ["copy via title admin inline"],
    "rentals.Copy": ["copy via admin change"],
    "rentals.Hold": ["hold deleted via admin bulk action"],
    "rentals.Rental": ["rental admin (read-only) saved"],
    "trading.Trainer": ["trainer via admin change"],
    # The pokemon admin's history inline is read-only (no add, no delete, read-only fields): its writes are the
    # pokemon's own, covered by the change row.
    "trading.Pokemon": ["pokemon via admin change"],
    "trading.Pokemon>trading.OwnershipChange": ["pokemon via admin change"],
    "kvstore.Entry": ["entry admin is read-only"],
    "kvstore.TenantApiKey": ["api key revoked via admin action"],
    "accounts.ApiToken": ["token revoked via admin"],
    "accounts.User": ["user deactivated via admin"],
}
COMMAND_ROWS: dict[str, list[str]] = {
    "demo": ["demo command"],
    "rentals": ["copy rented via CLI", "copy returned via CLI"],
    "trading": ["pokemon via CLI import (raw COPY)"],
    "kvadmin": ["entry via CLI set"],
    "token": ["token revoked via CLI"],
}
#: Commands that write nothing a cached surface shows.
COMMANDS_NOT_WRITING = {"storefront_export": "reads orders and writes a CSV file"}


def _headers(w: freshkit.World, read: str) -> tuple[str, dict[str, str]]:
    if ":" not in read.split("/", 1)[0]:
        return read.format(**w.data), {}
    who, path = read.split(":", 1)
    secret = {
        "kv": w.data["kv_key"],
        "kv2": w.data["kv_key2"],
        "doomed": w.data["doomed_token"],
        "token": w.data.get("cli_token", ""),
        "vendor": w.data.get("vendor_token", ""),
    }[who]
    return path.format(**w.data), {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="module")
def fresh_world() -> Iterator[freshkit.World]:
    with freshkit.world() as w:
        # Tokens the CLI and the admin rows revoke, created through the CLI (another process again).
        w.data["cli_token"] = (
            w.manage("token", "create", "fresh-admin", "--name", "cli-doomed").strip().split()[-1]
        )
        w.data["vendor_token"] = (
            w.manage("token", "create", "fresh-vendor", "--name", "vendor").strip().split()[-1]
        )
        listed = w.manage("token", "list", "fresh-admin")
        w.data["token_id"] = next(
            line.split()[0]
            for line in listed.splitlines()
            if "cli-doomed" in line and line.split()[0].isdigit()
        )
        yield w


def _assert_fresh(w: freshkit.World, read: str, when: str) -> None:
    path, headers = _headers(w, read)
    status, body = freshkit.get(w.b.port, path, headers)
    want_status, want_body = w.oracle(path, headers)
    assert (status, body) == (want_status, want_body), f"{when}: {path} served stale bytes"


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_writer_matrix(fresh_world: freshkit.World, row: Row) -> None:
    w = fresh_world
    for read in row.reads:  # cached (and served from the cache by B) before the write
        path, headers = _headers(w, read)
        freshkit.get(w.b.port, path, headers)
        _assert_fresh(w, read, "before the write")
    if row.op is not None:
        w.call(row.op, **row.args)
    else:
        assert row.run is not None
        row.run(w)
    for read in row.reads:
        _assert_fresh(w, read, f"after {row.name}")


def test_every_row_names_a_watched_model_and_every_writer_kind_is_covered() -> None:
    from bazaar.core import freshness

    watched = {m._meta.label for m in freshness.watched()}
    assert {r.model for r in ROWS} <= watched
    names = {r.name for r in ROWS}
    for rows in [*ADMIN_ROWS.values(), *COMMAND_ROWS.values()]:
        assert set(rows) <= names
    kinds = {(r.model, r.writer) for r in ROWS}
    # Every watched model that feeds a surface has at least a service-or-admin row and a bulk or raw row.
    for label in watched - {"accounts.ApiToken", "accounts.User", "kvstore.TenantApiKey"}:
        writers = {k for m, k in kinds if m == label}
        if label == "trading.OwnershipChange":
            continue  # written only with pokemon (exchange, offers, import), covered by their rows
        assert writers & {"service", "admin"}, label
        assert writers & {"queryset", "raw", "command"}, label
