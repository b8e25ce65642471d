"""Hostile input, property-based: every API operation's text, integer and datetime parameters (path, query and
JSON body) fed values an attacker would send — NUL and other control characters, integers past 64 bits,
datetimes without a UTC offset — by the operation's legitimate caller (the access matrix's ``ok`` principal),
so the value gets past authentication and reaches the code that would store or query it.

Each case must answer below 500 with the API's JSON error shape, and a write that was refused must have changed
nothing (every call runs in a rolled-back savepoint of the access matrix's world; the snapshot covers every
Bazaar table). The operations come from the OpenAPI document, so a new endpoint is fuzzed without a new line.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.contract.matrix_world import (
    World,
    code_of,
    rolled_back,
    snapshot,
    world_fixture,  # noqa: F401  (the ``world`` fixture)
)
from tests.contract.test_access_matrix import API, Row, _path, _send

pytestmark = pytest.mark.django_db

_client = Client()

#: Text with at least one control character (NUL first among them) somewhere inside ordinary text.
_CONTROL = st.sampled_from(["\x00", *[chr(c) for c in range(1, 32) if chr(c) not in "\t\n\r"]])
HOSTILE_TEXT = st.builds(
    lambda head, ctl, tail: f"{head}{ctl}{tail}",
    st.text(alphabet="abcXYZ-_ 09", max_size=5),
    _CONTROL,
    st.text(alphabet="abc\x00\x07", max_size=5),
)
HOSTILE_INT = st.one_of(
    st.integers(min_value=2**63, max_value=2**80),
    st.integers(min_value=-(2**80), max_value=-(2**63) - 1),
)
NAIVE_DATETIME = st.datetimes(min_value=dt.datetime(2000, 1, 1)).map(
    lambda d: d.replace(microsecond=0).isoformat()
)


def _schema() -> dict[str, Any]:
    from ninja.responses import NinjaJSONEncoder

    from bazaar.config.api import api

    schema: dict[str, Any] = json.loads(
        json.dumps(api.get_openapi_schema(path_prefix="/api/"), cls=NinjaJSONEncoder)
    )
    return schema


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _kind(schema: dict[str, Any], node: dict[str, Any]) -> str | None:
    """text, int or datetime for a scalar parameter schema (through anyOf/nullable), else None."""
    node = _resolve(schema, node)
    for option in [node, *node.get("anyOf", [])]:
        option = _resolve(schema, option)
        if option.get("type") == "integer":
            return "int"
        if option.get("type") == "string":
            return "datetime" if option.get("format") == "date-time" else "text"
    return None


def _targets(schema: dict[str, Any], row: Row) -> list[tuple[str, str, str]]:
    """(where, name, kind) for every scalar parameter of the operation: path, query and top-level body fields."""
    op = schema["paths"][row.path][row.method.lower()]
    found = []
    for param in op.get("parameters", []):
        kind = _kind(schema, param.get("schema", {}))
        if kind and param["in"] in ("path", "query"):
            found.append((param["in"], param["name"], kind))
    content = op.get("requestBody", {}).get("content", {})
    if row.form == "json" and "application/json" in content:
        body = _resolve(schema, content["application/json"]["schema"])
        for name, prop in body.get("properties", {}).items():
            kind = _kind(schema, prop)
            if kind:
                found.append(("body", name, kind))
    return found


def _legit(row: Row) -> str:
    """The caller whose call gets furthest: the legitimate one, else one working on its own data."""
    return min(
        row.expect, key=lambda p: ("ok", "own").index(k) if (k := row.expect[p].kind) in ("ok", "own") else 9
    )


SCHEMA = _schema()
#: Every JSON operation with at least one text, integer or datetime parameter (GET /api/accounts/me has none).
ROWS = [r for r in API if r.form in ("json", "ndjson") and _targets(SCHEMA, r)]


def test_every_operation_with_parameters_is_fuzzed() -> None:
    with_params = {(r.method, r.path) for r in API if _targets(SCHEMA, r)}
    assert with_params - {(r.method, r.path) for r in ROWS} == set()


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.method} {r.path}" for r in ROWS])
def test_hostile_values_never_reach_a_500_nor_write(row: Row, world: World) -> None:
    targets = _targets(SCHEMA, row)
    principal = _legit(row)

    @given(target=st.sampled_from(targets), data=st.data())
    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def case(target: tuple[str, str, str], data: Any) -> None:
        where, name, kind = target
        value = data.draw({"text": HOSTILE_TEXT, "int": HOSTILE_INT, "datetime": NAIVE_DATETIME}[kind])
        with rolled_back():
            response = _send_with(row, world, principal, where, name, value)
            status, code = response.status_code, code_of(response)
            label = f"{row.method} {row.path} {where}.{name}={value!r}"
            assert status < 500, f"{label}: {status} {response.content[:200]!r}"
            if status >= 400:
                assert code, f"{label}: {status} without the API's error shape"
                assert snapshot() == world.baseline, f"{label}: refused ({status}) but the database changed"
            else:
                # Only a search term (stripped, never refused) may pass, and only on a read.
                assert row.method == "GET", f"{label}: accepted ({status})"
                assert (where, kind) == ("query", "text"), f"{label}: accepted ({status})"

    case()


def _send_with(row: Row, world: World, principal: str, where: str, name: str, value: Any) -> Any:
    """The row's own call with one parameter replaced by ``value``."""
    if where == "path":
        source = row.params.get(name, name)
        ids = {**world.ids, source: quote(str(value), safe="")}
        concrete = _path(row, World(world.users, world.secrets, ids))
        return _send(replace(row, path=concrete, params={}), world, principal)
    if where == "query":
        query = "&".join(p for p in row.query.split("&") if p and not p.startswith(f"{name}="))
        query = f"{query}&{name}={quote(str(value))}".lstrip("&")
        return _send(replace(row, query=query), world, principal)
    body = row.body(world.ids) if callable(row.body) else dict(row.body or {})
    body = {**body, name: value}
    return _send(replace(row, body=body), world, principal)


def _query_params(row: Row) -> list[tuple[str, str]]:
    return [(name, kind) for where, name, kind in _targets(SCHEMA, row) if where == "query"]


QUERY_ROWS = [r for r in API if r.form in ("json", "ndjson") and _query_params(r)]


@pytest.mark.parametrize("row", QUERY_ROWS, ids=[f"{r.method} {r.path}" for r in QUERY_ROWS])
def test_a_parameter_given_twice_is_refused_not_picked(row: Row, world: World) -> None:
    # Ninja keeps the last of a repeated scalar parameter: the answer would be for a request the client did not
    # make (?state=open&state=declined lists declined offers). Each query parameter, given twice, is a 422 naming
    # it, and nothing is written.
    principal = _legit(row)
    given_values = dict(p.split("=", 1) for p in row.query.split("&") if "=" in p)
    for name, kind in _query_params(row):
        value = given_values.get(name) or ("1" if kind == "int" else "a")
        rest = "&".join(p for p in row.query.split("&") if p and not p.startswith(f"{name}="))
        query = f"{rest}&{name}={value}&{name}={value}".lstrip("&")
        with rolled_back():
            response = _send(replace(row, query=query), world, principal)
            label = f"{row.method} {row.path}?{query}"
            assert response.status_code == 422, f"{label}: {response.status_code} {response.content[:200]!r}"
            assert code_of(response) == "validation_error", label
            assert [d["field"] for d in response.json()["details"]] == [name], label
            assert snapshot() == world.baseline, f"{label}: refused but the database changed"
