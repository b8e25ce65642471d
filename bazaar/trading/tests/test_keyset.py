"""Keyset pages of the trading lists: a cursor walk returns every row once, in the order asked, whatever the
order (ties included); bad cursors and deep offsets are 422s with stable codes; counts are bounded."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bazaar.core import pagination
from bazaar.trading import services
from bazaar.trading.models import Pokemon

T = "/api/trading"


@pytest.fixture
def herd(world: Any) -> list[str]:
    """23 more pokemon with many equal levels, species and dates (ties the cursor must break by id)."""
    for i in range(23):
        services.pokemon_create(
            public_id=f"hk{i:02d}",
            nickname=f"herd{i % 4}",
            species=("Eevee", "Onix", "Pikachu")[i % 3],
            level=10 + i % 5,
            owner=("tr1", "tr2", "tr3")[i % 3],
            date_of_ownership=dt.date(2020, 1, 1 + i % 6),
        )
    return list(Pokemon.objects.values_list("public_id", flat=True))


def _walk(api_client: Any, query: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        url = f"{T}/pokemon?limit={limit}&{query}" + (f"&cursor={cursor}" if cursor else "")
        r = api_client.call("GET", url)
        assert r.status_code == 200, r.content
        body = r.json()
        seen += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor walk did not end")


@pytest.mark.parametrize(
    "order", ["id", "-id", "level", "-level", "species", "-species", "date_of_ownership", "-nickname"]
)
def test_cursor_walk_returns_every_row_once_in_order(herd: list[str], api_client: Any, order: str) -> None:
    everything = api_client.call("GET", f"{T}/pokemon?limit=200&order={order}").json()
    assert everything["next_cursor"] is None
    assert everything["count"] == len(herd)
    assert everything["count_exact"] is True
    expected = [p["id"] for p in everything["items"]]
    assert sorted(expected) == sorted(herd)
    assert _walk(api_client, f"order={order}", 4) == expected
    # offset pages (within the window) agree with the cursor's
    assert [
        p["id"] for p in api_client.call("GET", f"{T}/pokemon?limit=4&offset=8&order={order}").json()["items"]
    ] == (expected[8:12])


def test_cursor_walk_with_filters(herd: list[str], api_client: Any) -> None:
    query = "owner=tr2&level_min=11&order=-level"
    all_at_once = [p["id"] for p in api_client.call("GET", f"{T}/pokemon?limit=200&{query}").json()["items"]]
    assert len(all_at_once) > 3
    assert _walk(api_client, query, 3) == all_at_once


def test_trainer_cursor_walk(world: Any, api_client: Any) -> None:
    first = api_client.call("GET", f"{T}/trainers?limit=2&order=-date_of_birth").json()
    assert [t["id"] for t in first["items"]] == ["tr2", "tr1"]
    rest = api_client.call("GET", f"{T}/trainers?limit=2&order=-date_of_birth&cursor={first['next_cursor']}")
    assert [t["id"] for t in rest.json()["items"]] == ["tr3"]
    assert rest.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("cursor=!!", "invalid_cursor"),  # not the cursor alphabet
        ("cursor=", "invalid_cursor"),  # empty
        ("cursor=" + "A" * 1025, "invalid_cursor"),  # longer than any cursor this API gives out
        ("cursor=bm90LWpzb24", "invalid_cursor"),  # base64 of "not-json"
        ("cursor=WyJpZCJd", "invalid_cursor"),  # ["id"]: too few values
        ("cursor=WyJsZXZlbCIsInBrMSJd&order=id", "invalid_cursor"),  # made for another order
        (
            "cursor=WyJsZXZlbCIsIm5vdC1hLW51bWJlciIsInBrMSJd&order=level",
            "invalid_cursor",
        ),  # level is not a number
        ("cursor=WyJpZCIsdHJ1ZV0", "invalid_cursor"),  # ["id", true]
        ("offset=10001", "offset_too_deep"),  # past the window: the answer names the cursor
        ("offset=4&cursor=WyJpZCIsInBrMSJd", "cursor_with_offset"),
    ],
)
def test_bad_cursor_or_deep_offset_is_a_422(world: Any, api_client: Any, query: str, code: str) -> None:
    r = api_client.call("GET", f"{T}/pokemon?{query}")
    assert r.status_code == 422, r.content
    assert r.json()["code"] == code
    assert r.json()["message"]


def test_a_cursor_outside_its_alphabet_is_an_invalid_cursor(world: Any, api_client: Any) -> None:
    r = api_client.call("GET", f"{T}/pokemon?cursor=!!")
    assert (r.status_code, r.json()["code"]) == (422, "invalid_cursor")


def test_offset_past_the_window_names_the_cursor(world: Any) -> None:
    from bazaar.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as err:
        pagination.keyset_page(
            Pokemon.objects.all(), ordering=["public_id"], order_key="id", limit=5, offset=10_001, cursor=None
        )
    assert err.value.code == "offset_too_deep"
    assert "cursor" in str(err.value)


def test_count_is_bounded(herd: list[str], api_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above COUNT_EXACT_UPTO no request counts the whole table: the count query is LIMIT-ed and the answer is the
    planner's estimate (PostgreSQL) or the exact count (the embedded SQLite), labelled by count_exact."""
    monkeypatch.setattr(pagination, "COUNT_EXACT_UPTO", 5)
    with CaptureQueriesContext(connection) as queries:
        body = api_client.call("GET", f"{T}/pokemon?limit=3&order=level").json()
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts
    assert "LIMIT 6" in counts[0]
    if connection.vendor == "postgresql":
        assert all("LIMIT 6" in q for q in counts)  # never a COUNT over the whole table
        assert body["count_exact"] is False
        assert body["count"] >= 6
        assert any(q["sql"].startswith("EXPLAIN") for q in queries.captured_queries)
    else:
        assert (body["count"], body["count_exact"]) == (len(herd), True)


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL's estimate"
)
def test_a_large_list_on_a_large_table_is_not_counted(
    herd: list[str], api_client: Any, monkeypatch: Any
) -> None:
    """On a table bigger than the bound, a query the planner expects to match far more rows than the bound gets
    the estimate with no COUNT at all; a narrow filter on the same table is still counted exactly."""
    with connection.cursor() as cur:
        cur.execute("ANALYZE trading_pokemon")
    monkeypatch.setattr(pagination, "COUNT_EXACT_UPTO", 5)
    monkeypatch.setattr(pagination, "ESTIMATE_FIRST_ABOVE", 10)
    monkeypatch.setattr(pagination, "_table_rows_seen", {})
    with CaptureQueriesContext(connection) as queries:
        body = api_client.call("GET", f"{T}/pokemon?limit=3").json()
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert body["count_exact"] is False
    assert body["count"] > 10
    narrow = api_client.call("GET", f"{T}/pokemon?limit=3&owner=tr2&level_min=14").json()
    expected = Pokemon.objects.filter(owner__public_id="tr2", level__gte=14).count()
    assert (narrow["count"], narrow["count_exact"]) == (expected, True)


@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL's plan")
def test_deep_cursor_page_is_an_index_range_read(herd: list[str]) -> None:
    """The page after a cursor is read from the unique (public_id) index, not sorted from a scan."""
    qs = Pokemon.objects.all()
    query = qs.order_by("public_id").filter(pagination._after(["public_id"], ["hk10"]))[:5]
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_bitmapscan = off")
        sql, params = query.query.sql_with_params()
        cur.execute("EXPLAIN " + sql, params)
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert "Index" in plan, plan
    assert "Sort" not in plan, plan


def test_owner_pages_walk_the_owner_and_unknown_owner_is_empty(herd: list[str], api_client: Any) -> None:
    tr2 = sorted(Pokemon.objects.filter(owner__public_id="tr2").values_list("public_id", flat=True))
    assert len(tr2) > 4
    assert _walk(api_client, "owner=tr2", 2) == tr2
    body = api_client.call("GET", f"{T}/pokemon?owner=nobody").json()
    assert (body["items"], body["count"], body["next_cursor"]) == ([], 0, None)


@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL's plan")
def test_one_trainers_page_is_read_from_the_owner_index(herd: list[str]) -> None:
    """A trainer's pokemon in id order come from the (owner, public_id) index, not from a walk of the whole
    public_id index filtered by owner (what a join on the trainer made the planner pick at 1M rows)."""
    from bazaar.trading.selectors import pokemon_page

    with CaptureQueriesContext(connection) as queries:
        pokemon_page(
            owner="tr2", species=None, level_min=None, level_max=None, order=None, limit=2, offset=None
        )
    page_sql = next(q["sql"] for q in queries.captured_queries if "LIMIT 3" in q["sql"])
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_bitmapscan = off")
        cur.execute("EXPLAIN " + page_sql)
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert "trading_pokemon_owner_pid" in plan, plan
    assert "Sort" not in plan, plan


@pytest.mark.parametrize("order", ["id", "-id", "level", "-level", "species", "-nickname"])
@pytest.mark.parametrize("query", ["", "owner=tr2&", "species=onix&level_min=11&"])
def test_offset_pages_are_the_slices_of_the_whole_list(
    herd: list[str], api_client: Any, order: str, query: str
) -> None:
    """An offset page (read by a deferred join: keys first, then their rows) is exactly that slice of the list,
    in the order asked, ties included; with next_cursor continuing after its last row."""
    url = f"{T}/pokemon?{query}order={order}"
    everything = [p["id"] for p in api_client.call("GET", f"{url}&limit=200").json()["items"]]
    assert len(everything) >= 4
    for offset in (1, 2, len(everything) // 2, len(everything) - 1, len(everything)):
        body = api_client.call("GET", f"{url}&limit=3&offset={offset}").json()
        assert [p["id"] for p in body["items"]] == everything[offset : offset + 3], offset
        assert (body["next_cursor"] is not None) == (offset + 3 < len(everything)), offset
        if body["next_cursor"]:
            after = api_client.call("GET", f"{url}&limit=3&cursor={body['next_cursor']}").json()
            assert [p["id"] for p in after["items"]] == everything[offset + 3 : offset + 6], offset


def test_an_offset_page_skips_on_keys_alone(herd: list[str]) -> None:
    """The rows an offset skips are read as keys in a subquery, not fetched (and joined to their owner) whole."""
    from bazaar.trading.selectors import pokemon_page

    with CaptureQueriesContext(connection) as queries:
        page = pokemon_page(
            owner=None, species=None, level_min=None, level_max=None, order=None, limit=2, offset=5
        )
    assert [p["id"] for p in page["items"]] == sorted(herd)[5:7]
    (page_sql,) = [q["sql"] for q in queries.captured_queries if "OFFSET 5" in q["sql"]]
    outer, _, inner = page_sql.partition(" IN (SELECT ")
    assert inner, page_sql  # the skip runs inside the subquery
    assert "JOIN" in outer
    assert "JOIN" not in inner.split(")")[0]  # the keys are read without the owner
