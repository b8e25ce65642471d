"""``bazaar kvadmin``: staff commands that work on the database directly (tenants, API keys, backups).

For everyday use talk to the service with ``bazaar kv`` (``bazaar.kvstore.cli``, over HTTP).

bazaar kvadmin get KEY --tenant demo
bazaar kvadmin set KEY VALUE --tenant demo [--ttl 60] [--if-version 3] [--text]
bazaar kvadmin delete KEY --tenant demo [--if-version 3]
bazaar kvadmin list --tenant demo [--prefix app/] [--limit 100]
bazaar kvadmin export --tenant demo [FILE]          JSON lines (stdout by default), progress on stderr
bazaar kvadmin import --tenant demo FILE            all or nothing, progress on stderr
bazaar kvadmin keys create|list --tenant demo [--name NAME];  bazaar kvadmin keys revoke --tenant demo ID
bazaar kvadmin tenants create SLUG [--name NAME];   bazaar kvadmin tenants list
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from bazaar.core.errors import DomainError
from bazaar.kvstore import selectors, services
from bazaar.kvstore.models import Entry


class Command(BaseCommand):
    help = "Key-value store: get|set|delete|list|export|import, API keys and tenants."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)

        def with_tenant(p: ArgumentParser) -> ArgumentParser:
            p.add_argument("--tenant", required=True, help="tenant slug")
            return p

        p = with_tenant(sub.add_parser("get", help="print a key's value (JSON)"))
        p.add_argument("key")
        p.add_argument("--full", action="store_true", help="print the whole entry (version, timestamps, ttl)")
        p = with_tenant(sub.add_parser("set", help="set a key; VALUE is JSON, or text when it is not JSON"))
        p.add_argument("key")
        p.add_argument("value")
        p.add_argument("--ttl", type=int, default=None)
        p.add_argument("--if-version", type=int, default=None, dest="if_version")
        p.add_argument(
            "--text", action="store_true", help="store VALUE as a string even if it parses as JSON"
        )
        p = with_tenant(sub.add_parser("delete", help="delete a key"))
        p.add_argument("key")
        p.add_argument("--if-version", type=int, default=None, dest="if_version")
        p = with_tenant(sub.add_parser("list", help="list keys in key order"))
        p.add_argument("--prefix", default="")
        p.add_argument("--limit", type=int, default=100)
        p = with_tenant(sub.add_parser("export", help="write every live entry as JSON lines"))
        p.add_argument("file", nargs="?", default="-")
        p.add_argument("--prefix", default="")
        p = with_tenant(sub.add_parser("import", help="import JSON lines, all or nothing"))
        p.add_argument("file")

        keys = sub.add_parser("keys", help="tenant API keys").add_subparsers(
            dest="keys_action", required=True
        )
        p = with_tenant(keys.add_parser("create"))
        p.add_argument("--name", default="cli")
        with_tenant(keys.add_parser("list"))
        p = with_tenant(keys.add_parser("revoke"))
        p.add_argument("id", type=int)

        tenants = sub.add_parser("tenants", help="tenants").add_subparsers(
            dest="tenants_action", required=True
        )
        p = tenants.add_parser("create")
        p.add_argument("slug")
        p.add_argument("--name", default="")
        tenants.add_parser("list")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            getattr(self, f"do_{opts['action']}")(opts)
        except DomainError as exc:
            detail = f" {json.dumps(exc.details)}" if exc.details else ""
            raise CommandError(f"{exc.code}: {exc.message}{detail}")

    def _tenant_id(self, opts: dict[str, Any]) -> int:
        return int(selectors.tenant_by_slug(opts["tenant"]).pk)

    def do_get(self, opts: dict[str, Any]) -> None:
        read = selectors.entry_get(tenant_id=self._tenant_id(opts), key=opts["key"])
        entry = json.loads(read.body)
        self.stdout.write(json.dumps(entry if opts["full"] else entry["value"], ensure_ascii=False))

    def do_set(self, opts: dict[str, Any]) -> None:
        raw = opts["value"]
        value: Any = raw
        if not opts["text"]:
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw  # not JSON: store the text
        result = services.entry_set(
            tenant_id=self._tenant_id(opts),
            key=opts["key"],
            value=value,
            ttl=opts["ttl"],
            if_version=opts["if_version"],
        )
        self.stdout.write(f"{result.key} version {result.version}")

    def do_delete(self, opts: dict[str, Any]) -> None:
        result = services.entry_delete(
            tenant_id=self._tenant_id(opts), key=opts["key"], if_version=opts["if_version"]
        )
        self.stdout.write(f"deleted {result.key}")

    def do_list(self, opts: dict[str, Any]) -> None:
        tenant_id = self._tenant_id(opts)
        cursor: str | None = None
        left = opts["limit"]
        while left > 0:
            page = json.loads(
                selectors.entry_list(
                    tenant_id=tenant_id, prefix=opts["prefix"], limit=min(left, 1000), cursor=cursor
                )
            )
            for item in page["items"]:
                ttl = f" ttl={item['ttl']}" if item["ttl"] is not None else ""
                value = json.dumps(item["value"], ensure_ascii=False)
                self.stdout.write(f"{item['key']}\tv{item['version']}{ttl}\t{value[:80]}")
            left -= len(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break

    def do_export(self, opts: dict[str, Any]) -> None:
        from django.utils import timezone

        tenant_id = self._tenant_id(opts)
        total = (
            Entry.objects.live(timezone.now())
            .filter(tenant_id=tenant_id, key__startswith=opts["prefix"])
            .count()
        )
        out: TextIO = sys.stdout if opts["file"] == "-" else open(opts["file"], "w", encoding="utf-8")  # noqa: SIM115
        written = 0
        try:
            with tqdm(total=total, unit="key", desc="export", file=sys.stderr, disable=None) as bar:
                for line in selectors.entries_export(tenant_id=tenant_id, prefix=opts["prefix"]):
                    out.write(line + "\n")
                    written += 1
                    bar.update(1)
        finally:
            if out is not sys.stdout:
                out.close()
        self.stderr.write(f"exported {written} entries from {opts['tenant']}")

    def do_import(self, opts: dict[str, Any]) -> None:
        tenant_id = self._tenant_id(opts)
        records: list[Any] = []
        src: TextIO = sys.stdin if opts["file"] == "-" else open(opts["file"], encoding="utf-8")  # noqa: SIM115
        try:
            for n, line in enumerate(src, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except ValueError:
                    raise CommandError(f"invalid_record: line {n} is not JSON; nothing was imported")
        finally:
            if src is not sys.stdin:
                src.close()
        with tqdm(total=len(records), unit="key", desc="import", file=sys.stderr, disable=None) as bar:
            done = 0

            def progress(n: int) -> None:
                nonlocal done
                bar.update(n - done)
                done = n

            try:
                count = services.entries_import(tenant_id=tenant_id, records=records, progress=progress)
            except DomainError as exc:
                raise CommandError(
                    f"{exc.code}: {exc.message} {json.dumps(exc.details)}; nothing was imported"
                )
        self.stdout.write(f"imported {count} entries into {opts['tenant']}")

    def do_keys(self, opts: dict[str, Any]) -> None:
        tenant_id = self._tenant_id(opts)
        action = opts["keys_action"]
        if action == "create":
            issued = services.apikey_create(tenant_id=tenant_id, name=opts["name"])
            self.stdout.write(f"API key #{issued.key.pk} for {opts['tenant']} (shown once): {issued.secret}")
        elif action == "revoke":
            key = services.apikey_revoke(key_id=opts["id"], tenant_id=tenant_id)
            self.stdout.write(f"revoked key #{key.pk} ({key.prefix}…)")
        else:
            for key in selectors.apikey_list(tenant_id=tenant_id):
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
                self.stdout.write(f"#{key.pk}\t{key.prefix}…\t{key.name}\t{state}")

    def do_tenants(self, opts: dict[str, Any]) -> None:
        if opts["tenants_action"] == "create":
            tenant = services.tenant_create(slug=opts["slug"], name=opts["name"])
            self.stdout.write(f"created tenant {tenant.slug}")
        else:
            for tenant in selectors.tenant_list():
                self.stdout.write(f"{tenant.slug}\t{tenant.name}")
