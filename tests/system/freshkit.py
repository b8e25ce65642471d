"""Writer-matrix kit: a world of its own (database, shared cache namespace, two production servers) and a *writer*
process that performs one kind of write at a time, so that every read in the matrix goes through another process
than the write (tests/test_freshness.py).

* Server A takes the writes that arrive over HTTP (the API's raw-SQL fast paths); server B only serves reads.
* The writer process (``python -m tests.system.freshkit writer``) runs services, querysets, the admin (through
  Django's own views and forms, with the form fields a browser would submit), management commands and tasks, and
  renders the *oracle*: the same URL through Django in a fresh, empty cache namespace, i.e. what the database says
  now. A read is fresh when server B's bytes equal the oracle's.

Embedded default: SQLite file + the shared SQLite cache file. With DATABASE_URL/REDIS_URL set: a new database on
that PostgreSQL server and the same Redis under a private key prefix.
"""

from __future__ import annotations

import base64
import contextlib
import html.parser
import http.client
import io
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


# --- the world (runs in the test process; no Django database access there) --------------------------------


@dataclass
class World:
    env: dict[str, str]
    a: Any
    b: Any
    writer: subprocess.Popen[str]
    data: dict[str, Any]

    def call(self, op: str, **args: Any) -> Any:
        assert self.writer.stdin is not None
        assert self.writer.stdout is not None
        self.writer.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.writer.stdin.flush()
        line = self.writer.stdout.readline()
        if not line:
            raise RuntimeError("the writer process died")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{op}: {answer['error']}")
        return answer["result"]

    def oracle(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        got = self.call("oracle", path=path, headers=headers or {})
        return got["status"], base64.b64decode(got["body"])

    def restart_writer(self) -> None:
        """A new writer process (the old one's memory, e.g. an outage it noticed, is gone)."""
        self.writer.kill()
        self.writer.wait(10)
        self.writer = _spawn_writer(self.env)
        self.call("load", data=self.data)

    def manage(self, *args: str) -> str:
        r = subprocess.run(
            [PY, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        if r.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)}: {r.stdout[-1000:]} {r.stderr[-2000:]}")
        return r.stdout

    def bench_setup(self, *args: str) -> str:
        """A bench fixture action (``python -m bench.setup``), another process like the CLI."""
        r = subprocess.run(
            [PY, "-m", "bench.setup", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if r.returncode != 0:
            raise RuntimeError(f"bench.setup {' '.join(args)}: {r.stdout[-1000:]} {r.stderr[-2000:]}")
        return r.stdout


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": "127.0.0.1", **(headers or {})})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def send(port: int, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else b""
        conn.request(
            method,
            path,
            body=payload,
            headers={"Host": "127.0.0.1", "Content-Type": "application/json", **headers},
        )
        r = conn.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def _database(name: str) -> tuple[str, Any]:
    """A new empty database on the configured server (or a SQLite file) and its cleanup."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        base = url.rsplit("/", 1)[0]
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            with psycopg.connect(base + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        return f"{base}/{name}", drop
    path = Path(tempfile.gettempdir()) / f"{name}.sqlite3"

    def unlink() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)

    return f"sqlite:///{path}", unlink


@contextlib.contextmanager
def world(redis_url: str | None = None) -> Iterator[World]:
    from bench.harness import Server, bench_env

    name = f"fresh_{uuid.uuid4().hex[:10]}"
    database_url, drop = _database(name)
    cache_file = Path(tempfile.gettempdir()) / f"{name}-cache.sqlite3"
    extra = {
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", "") if redis_url is None else redis_url,
        "CACHE_SQLITE_PATH": str(cache_file),
        "BAZAAR_CACHE_PREFIX": name,
        "CELERY_BROKER_URL": "",
        "EDGE_PURGE_URL": "",
        "BAZAAR_VAR_DIR": str(ROOT / "var" / "fresh"),
        "LOGIN_THROTTLE_PER_ACCOUNT": "1000",
        "LOGIN_THROTTLE_PER_IP": "1000",
    }
    env = bench_env(extra)
    servers = [Server(workers=1, threads=2, env=extra), Server(workers=2, threads=2, env=extra)]
    writer: subprocess.Popen[str] | None = None
    try:
        for step in (["migrate", "--noinput", "-v", "0"], ["collectstatic", "--noinput", "-v", "0"]):
            subprocess.run([PY, "manage.py", *step], cwd=ROOT, env=env, check=True, capture_output=True)
        writer = _spawn_writer(env)
        for s in servers:
            s.start()
        w = World(env=env, a=servers[0], b=servers[1], writer=writer, data={})
        w.data = w.call("seed")
        try:
            yield w
        finally:
            writer = w.writer  # restart_writer() may have replaced it
    finally:
        if writer is not None:
            writer.kill()
            writer.wait(10)
        for s in servers:
            s.stop()
        drop()
        for suffix in ("", "-wal", "-shm"):
            Path(str(cache_file) + suffix).unlink(missing_ok=True)


def _spawn_writer(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PY, "-m", "tests.system.freshkit", "writer"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


# --- the writer process ---------------------------------------------------------------------------------------


class _Form(html.parser.HTMLParser):
    """The fields a browser submits from the page's main form (inputs, selects, textareas)."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._selected: str | None = None
        self._first: str | None = None
        self._multiple = False
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside or ("name" not in a and tag not in ("option",)):
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select":
            self._select, self._selected, self._first = a["name"], None, None
            self._multiple = "multiple" in a
        elif tag == "option" and self._select is not None:
            if self._first is None:
                self._first = a.get("value", "")
            if "selected" in a:
                if self._multiple:  # a multiple select submits each selected option, none when none is
                    self.fields.append((self._select, a.get("value", "")))
                else:
                    self._selected = a.get("value", "")
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            if not self._multiple:
                value = self._selected if self._selected is not None else (self._first or "")
                self.fields.append((self._select, value))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, self._text.lstrip("\n")))
            self._textarea = None


class Writer:
    """The writes of the matrix, run in this (writer) process."""

    def __init__(self) -> None:
        from django.test import Client

        self.data: dict[str, Any] = {}
        self.admin = Client(HTTP_HOST="127.0.0.1")

    # -- helpers
    def _admin_change(self, url: str, changes: dict[str, str]) -> None:
        page = self.admin.get(url)
        assert page.status_code == 200, (url, page.status_code)
        model = url.strip("/").split("/")[2]  # /admin/<app>/<model>/<pk>/change/
        form = _Form(f"{model}_form")
        form.feed(page.content.decode())
        data: dict[str, Any] = {}
        for k, v in form.fields:
            data.setdefault(k, []).append(v)
        for k, v in changes.items():
            data[k] = [v]
        data["_save"] = ["Save"]
        r = self.admin.post(url, data)
        if r.status_code != 302:
            text = r.content.decode()
            errors = [text[i : i + 300] for i in range(len(text)) if text.startswith('class="errorlist', i)]
            raise AssertionError(f"{url}: {r.status_code} {errors[:3]}")

    def _admin_action(self, changelist: str, action: str, pks: list[int]) -> None:
        r = self.admin.post(changelist, {"action": action, "_selected_action": [str(p) for p in pks]})
        if r.status_code == 200 and b"post" in r.content:  # delete_selected asks for confirmation
            r = self.admin.post(
                changelist,
                {"action": action, "_selected_action": [str(p) for p in pks], "post": "yes"},
            )
        assert r.status_code == 302, (changelist, r.status_code)

    # -- the world
    def seed(self) -> dict[str, Any]:
        from bazaar.accounts.models import User
        from bazaar.accounts.services import token_create
        from bazaar.kvstore.services import apikey_create, entry_set, tenant_create
        from bazaar.rentals.services import copies_add, customer_create, title_create
        from bazaar.storefront.services import product_create, vendor_signup
        from bazaar.trading.services import import_csv

        admin = User(username="fresh-admin", email="a@example.com", is_staff=True, is_superuser=True)
        admin.set_password("Fresh-Admin-Pass-2026")
        admin.save()
        self.admin.force_login(admin)
        shop = vendor_signup(
            username="fresh-vendor",
            password="Tamarind-Kettle-Orbit-42",
            email="v@example.com",
            shop_name="Fresh Shop",
            slug="fresh-shop",
        )
        tea = product_create(
            owner=shop.owner, name="Tea", mrp=Decimal("12.00"), price=Decimal("10.00"), stock=50
        )
        rice = product_create(
            owner=shop.owner, name="Rice", mrp=Decimal("5.00"), price=Decimal("4.00"), stock=9
        )
        title = title_create(title="Fresh Title", author="Bazaar", copies=0)
        copies = copies_add(title_id=title.pk, barcodes=["FR-1", "FR-2", "FR-3"])
        customer = customer_create(name="Fresh Reader")
        import_csv(
            source=io.BytesIO(
                b"id,firstName,lastName,dateOfBirth\nfr01,Ash,One,01-01-1990\nfr02,Misty,Two,02-02-1991\n"
            ),
            kind="trainers",
        )
        import_csv(
            source=io.BytesIO(
                b"id,nickname,species,level,owner,dateOfOwnership\n"
                b"fp01,Sparky,Pikachu,5,fr01,01-01-2020\nfp02,Bubbles,Squirtle,7,fr02,01-01-2020\n"
            ),
            kind="pokemon",
        )
        tenant = tenant_create(slug="fresh")
        key = apikey_create(tenant_id=tenant.pk, name="reader")
        key2 = apikey_create(tenant_id=tenant.pk, name="doomed")
        entry_set(tenant_id=tenant.pk, key="greeting", value="hello")
        self.data = {
            "token": token_create(user=admin, name="fresh").secret,
            "doomed_token": token_create(user=admin, name="doomed").secret,
            "admin_id": admin.pk,
            "vendor_id": shop.owner_id,
            "slug": shop.slug,
            "shop_id": shop.pk,
            "tea": tea.pk,
            "rice": rice.pk,
            "title": title.pk,
            "copies": [c.pk for c in copies],
            "customer": customer.pk,
            "tenant": tenant.pk,
            "kv_key": key.secret,
            "kv_key2": key2.secret,
            "kv_key2_id": key2.key.pk,
        }
        return self.data

    def load(self, data: dict[str, Any]) -> None:
        """A restarted writer takes over the world's data (and signs in to the admin again)."""
        from bazaar.accounts.models import User

        self.data = data
        self.admin.force_login(User.objects.get(pk=data["admin_id"]))

    def oracle(self, path: str, headers: dict[str, str]) -> dict[str, Any]:
        """``path`` through Django in an empty cache namespace: built from the database as it is now."""
        from django.test import Client

        from bazaar.core import cache

        cache.set_prefix(f"oracle{uuid.uuid4().hex[:12]}")
        try:
            r = Client(HTTP_HOST="127.0.0.1").get(path, headers=headers)
        finally:
            cache.set_prefix(None)
        return {"status": r.status_code, "body": base64.b64encode(r.content).decode()}

    def run(self, op: str, **args: Any) -> Any:
        from django.utils import timezone

        from bazaar.accounts.models import ApiToken, User
        from bazaar.kvstore.models import Entry, TenantApiKey
        from bazaar.rentals.models import Copy, Title
        from bazaar.storefront.models import Product, Shop
        from bazaar.trading.models import Pokemon, Trainer

        d = self.data
        n = uuid.uuid4().hex[:6]
        if op == "product_service":
            from bazaar.storefront.services import product_update

            product_update(owner=User.objects.get(pk=d["vendor_id"]), product_id=d["tea"], name=f"Tea {n}")
        elif op == "product_queryset":
            Product.objects.filter(pk=d["tea"]).update(price=Decimal("9.50"))
        elif op == "product_bulk_create":
            Product.objects.bulk_create(
                [
                    Product(
                        shop_id=d["shop_id"], name=f"Salt {n}", mrp=Decimal("2"), price=Decimal("1"), stock=3
                    )
                ]
            )
        elif op == "product_admin_change":
            self._admin_change(f"/admin/storefront/product/{d['tea']}/change/", {"name": f"Tea {n}"})
        elif op == "product_admin_delete_action":
            self._admin_action("/admin/storefront/product/", "delete_selected", [d["rice"]])
        elif op == "shop_service":
            from bazaar.storefront.services import shop_update

            shop_update(owner=User.objects.get(pk=d["vendor_id"]), name=f"Fresh Shop {n}")
        elif op == "shop_admin_change":
            self._admin_change(f"/admin/storefront/shop/{d['shop_id']}/change/", {"name": f"Fresh Shop {n}"})
        elif op == "shop_admin_inline_product":
            page = self.admin.get(f"/admin/storefront/shop/{d['shop_id']}/change/").content.decode()
            index = next(i for i in range(50) if f'name="products-{i}-id" value="{d["tea"]}"' in page)
            self._admin_change(
                f"/admin/storefront/shop/{d['shop_id']}/change/", {f"products-{index}-name": f"Tea {n}"}
            )
        elif op == "title_service":
            from bazaar.rentals.services import title_update

            title_update(title_id=d["title"], description=f"Fresh {n}")
        elif op == "title_admin_change":
            self._admin_change(f"/admin/rentals/title/{d['title']}/change/", {"description": f"Admin {n}"})
        elif op == "title_admin_inline_copy":
            page = self.admin.get(f"/admin/rentals/title/{d['title']}/change/").content.decode()
            index = next(i for i in range(50) if f'name="copies-{i}-id" value="{d["copies"][2]}"' in page)
            state = "withdrawn" if Copy.objects.get(pk=d["copies"][2]).state == "available" else "available"
            self._admin_change(f"/admin/rentals/title/{d['title']}/change/", {f"copies-{index}-state": state})
        elif op == "title_queryset":
            Title.objects.filter(pk=d["title"]).update(description=f"Bulk {n}")
        elif op == "copy_service":
            from bazaar.rentals.services import copy_set_state

            copy = Copy.objects.get(pk=d["copies"][1])
            copy_set_state(copy_id=copy.pk, state="lost" if copy.state == "available" else "available")
        elif op == "copy_admin_change":
            copy = Copy.objects.get(pk=d["copies"][1])
            state = "withdrawn" if copy.state == "available" else "available"
            self._admin_change(f"/admin/rentals/copy/{copy.pk}/change/", {"state": state})
        elif op == "copy_queryset":
            Copy.objects.filter(pk=d["copies"][1]).update(state="available")
        elif op == "trainer_service":
            from bazaar.trading.services import trainer_update

            trainer_update(
                public_id="fr01", changes={"first_name": f"Ash{n}"}, actor=User.objects.get(pk=d["admin_id"])
            )
        elif op == "trainer_admin_change":
            pk = Trainer.objects.get(public_id="fr02").pk
            self._admin_change(f"/admin/trading/trainer/{pk}/change/", {"first_name": f"Misty{n}"})
        elif op == "trainer_queryset":
            Trainer.objects.filter(public_id="fr02").update(last_name=f"Bulk{n}")
        elif op == "pokemon_service":
            from bazaar.trading.services import pokemon_update

            pokemon_update(
                public_id="fp01", changes={"nickname": f"Sparky{n}"}, actor=User.objects.get(pk=d["admin_id"])
            )
        elif op == "pokemon_admin_change":
            pk = Pokemon.objects.get(public_id="fp02").pk
            self._admin_change(f"/admin/trading/pokemon/{pk}/change/", {"nickname": f"Bubbles{n}"})
        elif op == "exchange_service":
            from bazaar.trading.services import exchange

            a = Pokemon.objects.get(public_id="fp01").owner.public_id
            b = "fr02" if a == "fr01" else "fr01"
            exchange(
                trainer_a=a,
                trainer_b=b,
                a_gives=["fp01"],
                b_gives=["fp02"],
                actor=User.objects.get(pk=d["admin_id"]),
            )
        elif op == "entry_service_delete":
            from bazaar.kvstore.services import entry_delete, entry_set

            entry_set(tenant_id=d["tenant"], key="doomed", value=1)
            entry_delete(tenant_id=d["tenant"], key="greeting")
            entry_set(tenant_id=d["tenant"], key="greeting", value=f"reborn {n}")
        elif op == "entry_admin_refused":
            # The entry admin is read-only (versions and CAS stay the API's): a change is refused, nothing written.
            entry = Entry.objects.get(tenant_id=d["tenant"], key="greeting")
            r = self.admin.post(
                f"/admin/kvstore/entry/{entry.pk}/change/", {"value": json.dumps(f"admin {n}")}
            )
            assert r.status_code == 403, r.status_code
            assert Entry.objects.get(pk=entry.pk).version == entry.version
        elif op == "entry_queryset":
            from django.db.models import F

            Entry.objects.filter(tenant_id=d["tenant"], key="greeting").update(
                value=json.dumps(f"bulk {n}"), version=F("version") + 1
            )
        elif op == "apikey_admin_revoke":
            self._admin_action("/admin/kvstore/tenantapikey/", "revoke", [d["kv_key2_id"]])
        elif op == "token_admin_revoke":
            from django.utils import timezone

            token = ApiToken.objects.get(user_id=d["admin_id"], name="doomed")
            self._admin_change(
                f"/admin/accounts/apitoken/{token.pk}/change/",
                {"revoked_at_0": timezone.now().strftime("%Y-%m-%d"), "revoked_at_1": "00:00:00"},
            )
        elif op == "shop_queryset":
            Shop.objects.filter(pk=d["shop_id"]).update(name=f"Fresh Shop {n}")
        elif op == "apikey_queryset_revoke":
            from django.utils import timezone

            TenantApiKey.objects.filter(pk=args["key_id"]).update(revoked_at=timezone.now())
        elif op == "import_task":
            # A trading import through its Celery task (run eagerly here: the embedded default's worker).
            from django.core.files.uploadedfile import SimpleUploadedFile

            from bazaar.trading.services import import_job_submit

            csv = (
                f"id,nickname,species,level,owner,dateOfOwnership\nfp01,Tasked{n},Pikachu,5,fr01,01-01-2020\n"
            )
            import_job_submit(upload=SimpleUploadedFile("t.csv", csv.encode()), kind="pokemon", dry_run=False)
        elif op == "hold_service":
            from bazaar.rentals.services import hold_place

            hold_place(customer_id=d["customer"], title_id=d["title"])
        elif op == "hold_queryset":
            from bazaar.rentals.models import Hold
            from bazaar.rentals.services import hold_place

            hold_place(customer_id=d["customer"], title_id=d["title"])
            Hold.objects.filter(title_id=d["title"], closed_at__isnull=True).update(closed_at=timezone.now())
        elif op == "rental_queryset":
            from datetime import timedelta

            from bazaar.rentals.models import Rental

            Rental.objects.filter(title_id=d["title"]).update(due_at=timezone.now() + timedelta(days=30))
        elif op == "hold_admin_delete":
            from bazaar.rentals.models import Hold

            self._admin_action(
                "/admin/rentals/hold/", "delete_selected", list(Hold.objects.values_list("pk", flat=True))
            )
        elif op == "rental_admin_save":
            # The rental admin is read-only (the desk services compute charges): saving its form changes nothing.
            from bazaar.rentals.models import Rental

            rental = Rental.objects.order_by("-pk").first()
            assert rental is not None
            self._admin_change(f"/admin/rentals/rental/{rental.pk}/change/", {})
        elif op == "user_admin_demote":
            self._admin_change(f"/admin/accounts/user/{d['vendor_id']}/change/", {"is_active": ""})
        else:
            raise ValueError(f"unknown op {op}")
        return None


def _writer_loop() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bazaar.config.settings.base")
    django.setup()
    from bazaar.core import cache

    cache.set_prefix(None)
    writer = Writer()
    for line in sys.stdin:
        req = json.loads(line)
        try:
            if req["op"] == "seed":
                result: Any = writer.seed()
            elif req["op"] == "load":
                writer.load(**req["args"])
                result = None
            elif req["op"] == "oracle":
                result = writer.oracle(**req["args"])
            else:
                result = writer.run(req["op"], **req["args"])
            out = {"result": result}
        except Exception as exc:  # reported to the test, which fails with it
            import traceback

            out = {"error": f"{exc!r}\n{traceback.format_exc()[-3000:]}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__" and sys.argv[1:] == ["writer"]:
    _writer_loop()
