"""``bazaar kv``: the key-value store over HTTP, like etcdctl or redis-cli (no database access, no Django).

    bazaar kv [--url URL] [--key API_KEY] [--json] COMMAND ...
    get KEY | put KEY VALUE [--ttl S] [--if-version V] [--text] | del KEY [--if-version V]
    list [--prefix P] [--limit N] [--cursor C] | history KEY [--limit N] [--before R]
    watch [--prefix P] [--since R] [--wait S] [--once] | incr KEY [--by N] [--ttl S] | txn [FILE]  (JSON, - = stdin)
    shell                                    an interactive prompt running the same commands

``--url`` defaults to ``$BAZAAR_URL`` or http://127.0.0.1:8000; ``watch`` goes to ``--watch-url`` (``$BAZAAR_WATCH_URL``)
when set: the watch server, e.g. http://127.0.0.1:8100 under ``make run``. The API key comes from ``--key`` or
``$BAZAAR_KV_KEY``. Exit codes: 0 ok, 1 not found, 2 conflict (a version or compare mismatch), 3 anything else
(usage, refused input, authentication, server or connection errors). The staff commands that work on the
database directly (tenants, API keys, export/import for backups) are ``bazaar kvadmin``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, NoReturn, TextIO

OK, NOT_FOUND, CONFLICT, OTHER = 0, 1, 2, 3


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2, which means "conflict" here
        raise UsageError(f"{self.prog}: {message}")


class Failed(Exception):
    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body
        super().__init__(f"{status}")

    @property
    def code(self) -> int:
        return NOT_FOUND if self.status == 404 else CONFLICT if self.status in (409, 412) else OTHER


class Client:
    def __init__(self, url: str, key: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--url must be an http:// or https:// address, not {url!r}")
        self.url, self.key = url.rstrip("/"), key

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        q = {k: v for k, v in (query or {}).items() if v is not None}
        target = f"{self.url}/api/kv{path}" + (f"?{urllib.parse.urlencode(q)}" if q else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(target, data=data, method=method)  # noqa: S310 (scheme checked in __init__)
        req.add_header("Authorization", f"Bearer {self.key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=90) as r:  # noqa: S310 (the URL is the user's own service)
                raw = r.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                payload: Any = json.loads(raw)
            except ValueError:
                payload = {"code": "http_error", "message": raw.decode(errors="replace")[:200]}
            raise Failed(exc.code, payload) from None
        except (urllib.error.URLError, OSError) as exc:
            raise Failed(0, {"code": "connection_failed", "message": f"{self.url}: {exc}"}) from None
        return json.loads(raw) if raw else {}


def _key_path(key: str) -> str:
    return "/keys/" + urllib.parse.quote(key, safe="/")


def _parser() -> _Parser:
    p = _Parser(prog="bazaar kv", description="The Bazaar key-value store over HTTP.")
    p.add_argument("--url", default=os.environ.get("BAZAAR_URL", "http://127.0.0.1:8000"))
    p.add_argument(
        "--watch-url",
        default=os.environ.get("BAZAAR_WATCH_URL", ""),
        help="where watch goes (default $BAZAAR_WATCH_URL, else --url)",
    )
    p.add_argument(
        "--key",
        dest="api_key",
        default=os.environ.get("BAZAAR_KV_KEY", ""),
        help="API key (default $BAZAAR_KV_KEY)",
    )
    p.add_argument("--json", action="store_true", help="print the service's JSON answers")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    s = sub.add_parser("get", help="print a key's value")
    s.add_argument("key")
    s = sub.add_parser("put", help="set a key; VALUE is JSON, or text when it does not parse")
    s.add_argument("key")
    s.add_argument("value")
    s.add_argument("--ttl", type=int)
    s.add_argument("--if-version", type=int, dest="if_version")
    s.add_argument("--text", action="store_true", help="store VALUE as text even if it parses as JSON")
    s = sub.add_parser("del", help="delete a key")
    s.add_argument("key")
    s.add_argument("--if-version", type=int, dest="if_version")
    s = sub.add_parser("list", help="keys in key order")
    s.add_argument("--prefix", default="")
    s.add_argument("--limit", type=int)
    s.add_argument("--cursor")
    s = sub.add_parser("history", help="a key's past values, newest first")
    s.add_argument("key")
    s.add_argument("--limit", type=int)
    s.add_argument("--before", type=int)
    s = sub.add_parser("watch", help="print changes as they commit")
    s.add_argument("--prefix", default="")
    s.add_argument("--since", type=int, help="a revision (default: now)")
    s.add_argument("--wait", type=int, default=30, help="long-poll seconds per request")
    s.add_argument("--once", action="store_true", help="stop after the first batch")
    s = sub.add_parser("incr", help="add to a counter atomically")
    s.add_argument("key")
    s.add_argument("--by", type=int, default=1)
    s.add_argument("--ttl", type=int)
    s = sub.add_parser("txn", help="run a txn: JSON {compare, success, failure} from FILE or stdin")
    s.add_argument("file", nargs="?", default="-")
    sub.add_parser("shell", help="an interactive prompt")
    return p


def _value(text: str, as_text: bool) -> Any:
    if as_text:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _dump(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _run(args: argparse.Namespace, c: Client, out: TextIO, stdin: TextIO) -> int:
    cmd = args.cmd
    if cmd == "get":
        r = c.call("GET", _key_path(args.key))
        print(_dump(r) if args.json else _dump(r["value"]), file=out)
    elif cmd == "put":
        body = {"value": _value(args.value, args.text), "ttl": args.ttl, "if_version": args.if_version}
        r = c.call(
            "PUT", _key_path(args.key), {k: v for k, v in body.items() if k == "value" or v is not None}
        )
        print(_dump(r) if args.json else f"OK version {r['version']} revision {r['revision']}", file=out)
    elif cmd == "del":
        c.call("DELETE", _key_path(args.key), query={"if_version": args.if_version})
        print(_dump({"deleted": args.key}) if args.json else "deleted", file=out)
    elif cmd == "list":
        r = c.call(
            "GET", "/keys", query={"prefix": args.prefix or None, "limit": args.limit, "cursor": args.cursor}
        )
        if args.json:
            print(_dump(r), file=out)
        else:
            for item in r["items"]:
                print(f"{item['key']}\t{_dump(item['value'])}", file=out)
            if r["next_cursor"]:
                print(f"# more: --cursor {r['next_cursor']}", file=out)
    elif cmd == "history":
        r = c.call(
            "GET", _key_path(args.key) + "/history", query={"limit": args.limit, "before": args.before}
        )
        if args.json:
            print(_dump(r), file=out)
        for item in [] if args.json else r["items"]:
            print(f"{item['revision']}\t{item['op']}\tv{item['version']}\t{_dump(item['value'])}", file=out)
    elif cmd == "watch":
        watcher = Client(args.watch_url, c.key) if args.watch_url else c
        since = args.since
        if since is None:
            since = c.call("GET", "/keys", query={"limit": 1})["revision"]
        while True:
            asked = time.monotonic()
            query = {"since": since, "prefix": args.prefix or None, "wait": args.wait}
            r = watcher.call("GET", "/watch", query=query)
            if not r["items"] and args.wait and time.monotonic() - asked < 1:
                time.sleep(1)  # the server had no room to wait (KVSTORE_WATCH_MAX_WAITING): do not spin
            for item in r["items"]:
                line = (
                    _dump(item)
                    if args.json
                    else f"{item['revision']}\t{item['op']}\t{item['key']}\t{_dump(item['value'])}"
                )
                print(line, file=out, flush=True)
            since = r["revision"]
            if args.once and r["items"]:
                break
    elif cmd == "incr":
        r = c.call(
            "POST", _key_path(args.key) + "/incr", {"by": args.by, **({"ttl": args.ttl} if args.ttl else {})}
        )
        print(_dump(r) if args.json else r["value"], file=out)
    elif cmd == "txn":
        text = stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()  # noqa: SIM115
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"the txn is not JSON: {exc}") from None
        r = c.call("POST", "/txn", body)
        print(_dump(r), file=out)
        return OK if r["succeeded"] else CONFLICT
    return OK


def _shell(base: list[str], out: TextIO, err: TextIO, stdin: TextIO) -> int:
    interactive = stdin.isatty()
    while True:
        if interactive:
            print("kv> ", end="", file=out, flush=True)
        line = stdin.readline()
        if not line:
            return OK
        words = shlex.split(line)
        if not words:
            continue
        if words[0] in ("exit", "quit"):
            return OK
        if words[0] == "shell":
            print("already in the shell", file=err)
            continue
        status = main([*base, *words], out=out, err=err, stdin=stdin)
        if status and not interactive:
            print(f"(exit {status})", file=err)


def main(
    argv: list[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run one command (or the shell); return the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    out, err, stdin = out or sys.stdout, err or sys.stderr, stdin or sys.stdin
    try:
        args = _parser().parse_args(argv)
    except UsageError as exc:
        print(str(exc), file=err)
        return OTHER
    except SystemExit as exc:  # --help
        return OK if exc.code in (0, None) else OTHER
    if args.cmd == "shell":
        base = ["--url", args.url, "--watch-url", args.watch_url, "--key", args.api_key]
        base += ["--json"] if args.json else []
        return _shell(base, out, err, stdin)
    if not args.api_key:
        print("bazaar kv: no API key (set BAZAAR_KV_KEY or pass --key)", file=err)
        return OTHER
    try:
        return _run(args, Client(args.url, args.api_key), out, stdin)
    except Failed as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        print(
            f"error {exc.status or ''} {body.get('code', '')}: {body.get('message', '')}".replace("  ", " "),
            file=err,
        )
        if args.json:
            print(_dump(body), file=out)
        return exc.code
    except UsageError as exc:
        print(f"bazaar kv: {exc}", file=err)
        return OTHER
    except KeyboardInterrupt:
        return OK
