"""`bazaar kv` talks to a live server over HTTP: commands, --json, exit codes, the shell, BAZAAR_URL/BAZAAR_KV_KEY."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from typing import Any

import pytest

from bazaar.kvstore.cli import main
from bazaar.kvstore.tests.conftest import make_kv

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli(live_server: Any) -> Any:
    kv = make_kv("clitest")

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(
            ["--url", live_server.url, "--key", kv.secret, *argv], out=out, err=err, stdin=io.StringIO(stdin)
        )
        return code, out.getvalue(), err.getvalue()

    run.kv = kv  # type: ignore[attr-defined]
    return run


def test_put_get_list_del_with_exit_codes(cli: Any) -> None:
    r = cli("put", "app/a", '{"n": 1}')
    assert r == (0, "OK version 1 revision 1\n", ""), r
    assert cli("put", "app/b", "plain text")[0] == 0
    assert cli("get", "app/a") == (0, '{"n":1}\n', "")
    assert cli("get", "app/b")[1] == '"plain text"\n'
    code, out, _ = cli("--json", "get", "app/a")
    assert (code, json.loads(out)["version"], json.loads(out)["revision"]) == (0, 1, 1)
    assert cli("list", "--prefix", "app/")[1] == 'app/a\t{"n":1}\napp/b\t"plain text"\n'
    code, _, err = cli("get", "missing")
    assert (code, "key_not_found" in err) == (1, True)
    code, _, err = cli("put", "app/a", "2", "--if-version", "7")
    assert (code, "version_conflict" in err) == (2, True)
    assert cli("del", "app/a")[0] == 0
    assert cli("del", "app/a")[0] == 1
    assert cli("get", "app/a")[0] == 1


def test_incr_history_txn_and_watch(cli: Any) -> None:
    assert cli("incr", "hits") == (0, "1\n", "")
    assert cli("incr", "hits", "--by", "4") == (0, "5\n", "")
    history = cli("history", "hits")[1].splitlines()
    assert [line.split("\t")[:3] for line in history] == [["2", "set", "v2"], ["1", "set", "v1"]]
    txn = {
        "compare": [{"key": "hits", "target": "value", "value": 5}],
        "success": [{"op": "put", "key": "seen", "value": True}],
    }
    code, out, _ = cli("txn", stdin=json.dumps(txn))
    assert (code, json.loads(out)["succeeded"]) == (0, True)
    code, out, _ = cli(
        "txn", stdin=json.dumps(txn | {"compare": [{"key": "hits", "target": "value", "value": 6}]})
    )
    assert (code, json.loads(out)["succeeded"]) == (2, False)  # a failed compare is a conflict
    assert cli("watch", "--since", "0", "--once", "--prefix", "se")[1] == "3\tset\tseen\ttrue\n"


def test_watch_follows_new_commits(cli: Any) -> None:
    cli("put", "k", "0")
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(cli("watch", "--once", "--wait", "10")))
    t.start()
    from bazaar.core.testing import wait_until
    from bazaar.kvstore import watch

    wait_until(lambda: _waiting(watch, cli.kv.tenant.pk) == 1, what="the CLI's watch waits on the server")
    cli("put", "k", "1")
    t.join(15)
    assert result[0][0] == 0
    assert result[0][1] == "2\tset\tk\t1\n"


def test_usage_and_connection_errors_exit_3(cli: Any, live_server: Any) -> None:
    assert cli("frobnicate")[0] == 3
    assert cli("put", "k")[0] == 3
    assert cli("txn", stdin="not json")[0] == 3
    assert cli("put", "x" * 300, "1")[0] == 3  # 422 invalid key
    out, err = io.StringIO(), io.StringIO()
    assert main(["--url", "http://127.0.0.1:9", "--key", "kv_x", "get", "k"], out=out, err=err) == 3
    assert "connection_failed" in err.getvalue()
    assert main(["--url", live_server.url, "--key", "kv_wrong", "get", "k"], out=out, err=err) == 3


def test_the_shell_runs_commands_until_eof(cli: Any) -> None:
    code, out, err = cli("shell", stdin="put a 1\nget a\nget nope\nincr n\nquit\nget a\n")
    assert code == 0
    assert out == "OK version 1 revision 1\n1\n1\n"
    assert "(exit 1)" in err


def test_the_console_script_reads_url_and_key_from_the_environment(cli: Any, live_server: Any) -> None:
    cli("put", "greeting", '"hi"')
    env = {**os.environ, "BAZAAR_URL": live_server.url, "BAZAAR_KV_KEY": cli.kv.secret}
    bazaar = os.path.join(os.path.dirname(sys.executable), "bazaar")
    done = subprocess.run(
        [bazaar, "kv", "get", "greeting"], env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, '"hi"\n')
    missing = subprocess.run(
        [bazaar, "kv", "get", "nope"], env=env, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1


def _waiting(watch: Any, tenant_id: int) -> int:
    """Long-polls waiting in this process on ``tenant_id`` (the hub's count, read under its lock). Per tenant: a
    long-poll another test left waiting (its own tenant) must not count as this one."""
    with watch.hub.cond:
        return int(watch.hub.waiting.get(tenant_id, 0))
