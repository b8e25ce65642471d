from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bazaar.core.testing import assert_refused
from bazaar.trading.models import ImportJob, OfferState, Pokemon, TradeOffer, Trainer
from bazaar.trading.tests.conftest import owners, snapshot

T = "/api/trading"


def test_trainer_list_public_paginated_with_totals(world: Any, api_client: Any) -> None:
    r = api_client.call("GET", f"{T}/trainers?limit=2")
    assert r.status_code == 200
    body = r.json()
    assert (body["count"], body["limit"], body["offset"]) == (3, 2, 0)
    assert [t["id"] for t in body["items"]] == ["tr1", "tr2"]
    r = api_client.call("GET", f"{T}/trainers?limit=2&offset=2&order=-id")
    assert [t["id"] for t in r.json()["items"]] == ["tr1"]
    assert_refused(api_client.call("GET", f"{T}/trainers?order=bogus"), 422, "invalid_order")
    assert_refused(api_client.call("GET", f"{T}/trainers?limit=5000"), 422, "invalid_limit")


def test_pokemon_list_filters(world: Any, api_client: Any) -> None:
    body = api_client.call("GET", f"{T}/pokemon?owner=tr1").json()
    assert [p["id"] for p in body["items"]] == ["pk1", "pk2"]
    body = api_client.call("GET", f"{T}/pokemon?species=pikachu&level_min=20&order=-level").json()
    assert [p["id"] for p in body["items"]] == ["pk5", "pk3"]
    assert body["count"] == 2


def test_reads_cached_and_invalidated_on_write(
    world: Any, api_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    r1 = api_client.call("GET", f"{T}/pokemon/pk1")
    assert r1["X-Cache"] == "miss"
    assert r1.json()["owner"] == "tr1"
    r2 = api_client.call("GET", f"{T}/pokemon/pk1")
    assert r2["X-Cache"] == "hit"
    assert api_client.call("GET", f"{T}/pokemon/pk1", HTTP_IF_NONE_MATCH=r2["ETag"]).status_code == 304
    assert api_client.call("GET", f"{T}/pokemon?owner=tr2").json()["count"] == 2
    with django_capture_on_commit_callbacks(execute=True):
        r = api_client.call(
            "POST",
            f"{T}/exchange",
            {"trainer_a": "tr1", "trainer_b": "tr2", "a_gives": ["pk1"]},
            token=world.staff_token,
        )
    assert r.status_code == 200
    r3 = api_client.call("GET", f"{T}/pokemon/pk1")
    assert (r3["X-Cache"], r3.json()["owner"]) == ("miss", "tr2")
    assert api_client.call("GET", f"{T}/pokemon?owner=tr2").json()["count"] == 3
    assert api_client.call("GET", f"{T}/trainers/tr2").json()["pokemon_count"] == 3
    history = api_client.call("GET", f"{T}/pokemon/pk1/history").json()
    assert [(h["cause"], h["from"], h["to"]) for h in history] == [
        ("create", None, "tr1"),
        ("exchange", "tr1", "tr2"),
    ]


def test_create_requires_staff_and_conflicts(world: Any, api_client: Any) -> None:
    payload = {"id": "tr9", "first_name": "Gary", "last_name": "Oak", "date_of_birth": "1987-11-01"}
    before = snapshot()
    assert_refused(api_client.call("POST", f"{T}/trainers", payload), 401, "unauthorized")
    r = api_client.call("POST", f"{T}/trainers", payload, token=world.ash_token)
    assert (r.status_code, r.json()["code"]) == (403, "staff_required")
    assert snapshot() == before
    r = api_client.call("POST", f"{T}/trainers", payload, token=world.staff_token)
    assert r.status_code == 201
    assert r.json()["id"] == "tr9"
    before = snapshot()
    r = api_client.call("POST", f"{T}/trainers", {**payload, "first_name": "Other"}, token=world.staff_token)
    assert (r.status_code, r.json()["code"]) == (409, "trainer_exists")
    r = api_client.call("POST", f"{T}/trainers", {**payload, "id": "x", "extra": 1}, token=world.staff_token)
    assert_refused(r, 422, "validation_error")
    assert snapshot() == before


def test_pokemon_crud(world: Any, api_client: Any) -> None:
    tok = world.staff_token
    r = api_client.call(
        "POST",
        f"{T}/pokemon",
        {"id": "pk9", "nickname": "Z", "species": "Eevee", "level": 7, "owner": "tr3"},
        token=tok,
    )
    assert r.status_code == 201
    before = snapshot()
    r = api_client.call(
        "POST",
        f"{T}/pokemon",
        {"id": "pk10", "nickname": "Z", "species": "Eevee", "level": 0, "owner": "tr3"},
        token=tok,
    )
    assert [e["field"] for e in assert_refused(r, 422, "validation_error")["details"]] == ["level"]
    assert snapshot() == before
    r = api_client.call("PATCH", f"{T}/pokemon/pk9", {"level": 8, "owner": "tr1"}, token=tok)
    assert (r.status_code, r.json()["level"], r.json()["owner"]) == (200, 8, "tr1")
    assert api_client.call("DELETE", f"{T}/pokemon/pk9", token=tok).status_code == 204
    assert_refused(api_client.call("GET", f"{T}/pokemon/pk9"), 404, "pokemon_not_found")
    before = snapshot()
    assert_refused(api_client.call("DELETE", f"{T}/pokemon/pk9", token=tok), 404, "pokemon_not_found")
    assert snapshot() == before


def test_trainer_delete_needs_cascade(world: Any, api_client: Any) -> None:
    before = snapshot()
    r = api_client.call("DELETE", f"{T}/trainers/tr1", token=world.staff_token)
    assert (r.status_code, r.json()["code"]) == (409, "trainer_has_pokemon")
    assert snapshot() == before
    assert (
        api_client.call("DELETE", f"{T}/trainers/tr1?cascade=true", token=world.staff_token).status_code
        == 204
    )
    assert not Pokemon.objects.filter(public_id__in=["pk1", "pk2"]).exists()


def test_exchange_conflict_details(world: Any, api_client: Any) -> None:
    before = snapshot()
    r = api_client.call(
        "POST",
        f"{T}/exchange",
        {"trainer_a": "tr1", "trainer_b": "tr2", "a_gives": ["pk3"], "b_gives": ["pk4"]},
        token=world.staff_token,
    )
    assert_refused(r, 409, "exchange_invalid")
    assert r.json()["details"]["problems"] == [
        {"pokemon": "pk3", "reason": "not_owned_by_giver", "giver": "tr1"}
    ]
    r = api_client.call(
        "POST",
        f"{T}/exchange",
        {"trainer_a": "tr1", "trainer_b": "tr2", "a_gives": ["pk1"]},
        token=world.ash_token,
    )
    assert_refused(r, 403, "staff_required")
    assert snapshot() == before


def test_offer_flow_with_tokens(world: Any, api_client: Any) -> None:
    r = api_client.call(
        "POST",
        f"{T}/offers",
        {"proposer": "tr1", "receiver": "tr2", "give": ["pk1"], "ask": ["pk3"]},
        token=world.ash_token,
    )
    assert r.status_code == 201
    offer = r.json()
    assert (offer["state"], offer["give"], offer["ask"]) == ("open", ["pk1"], ["pk3"])
    oid = offer["id"]
    r = api_client.call("POST", f"{T}/offers/{oid}/accept", token=world.ash_token)
    assert (r.status_code, r.json()["code"]) == (403, "not_your_offer")
    r = api_client.call("POST", f"{T}/offers/{oid}/accept", token=world.misty_token)
    assert (r.status_code, r.json()["state"]) == (200, "accepted")
    assert (owners()["pk1"], owners()["pk3"]) == ("tr2", "tr1")
    r = api_client.call("POST", f"{T}/offers/{oid}/decline", token=world.misty_token)
    assert (r.status_code, r.json()["code"]) == (409, "offer_not_open")
    listed = api_client.call("GET", f"{T}/offers?trainer=tr2", token=world.misty_token).json()
    assert listed["count"] == 1
    assert listed["items"][0]["state"] == "accepted"


def test_import_inline(world: Any, client: Any) -> None:
    csv = b"id,firstName,lastName,dateOfBirth\ntr7,A,B,01-02-1999\n"
    r = client.post(
        f"{T}/import/trainers",
        {"file": SimpleUploadedFile("t.csv", csv, "text/csv")},
        HTTP_AUTHORIZATION=f"Bearer {world.staff_token}",
    )
    assert r.status_code == 200, r.content
    assert r.json()["created"] == 1
    moving = b"id,nickname,species,level,owner,dateOfOwnership\npk1,n1,Pikachu,10,tr2,01-01-2024\n"
    before = snapshot()
    r = client.post(
        f"{T}/import/pokemon?dry_run=true",
        {"file": SimpleUploadedFile("p.csv", moving, "text/csv")},
        HTTP_AUTHORIZATION=f"Bearer {world.staff_token}",
    )
    assert r.status_code == 200, r.content
    got = r.json()
    assert (got["dry_run"], got["updated"], got["ownership_changes"], got["history_rows"]) == (True, 1, 1, 1)
    assert snapshot() == before
    bad = b"id,nickname,species,level,owner,dateOfOwnership\npk1,A,B,500,tr1,01-02-1999\n"
    before = snapshot()
    r = client.post(
        f"{T}/import/pokemon?dry_run=true",
        {"file": SimpleUploadedFile("p.csv", bad, "text/csv")},
        HTTP_AUTHORIZATION=f"Bearer {world.staff_token}",
    )
    assert r.status_code == 422
    assert r.json()["code"] == "import_invalid"
    assert r.json()["details"]["errors"][0] == {
        "row": 2,
        "column": "level",
        "message": "level '500' is not an integer from 1 to 100",
    }
    assert snapshot() == before
    r = client.post(
        f"{T}/import/trainers",
        {"file": SimpleUploadedFile("t.csv", csv, "text/csv")},
        HTTP_AUTHORIZATION=f"Bearer {world.ash_token}",
    )
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("kind", "header", "row"),
    [
        ("trainers", b"id,firstName,lastName,dateOfBirth", b"t%d,A,B,01-02-1999"),
        ("pokemon", b"id,nickname,species,level,owner,dateOfOwnership", b"p%d,N,Onix,5,tr1,01-02-2024"),
    ],
)
def test_import_too_large_is_413(
    world: Any, client: Any, settings: Any, kind: str, header: bytes, row: bytes
) -> None:
    settings.TRADING_IMPORT_MAX_BYTES = 100
    csv = header + b"\n" + b"".join(row % i + b"\n" for i in range(20))
    before = snapshot()
    r = client.post(
        f"{T}/import/{kind}",
        {"file": SimpleUploadedFile(f"{kind}.csv", csv)},
        HTTP_AUTHORIZATION=f"Bearer {world.staff_token}",
    )
    assert (r.status_code, r.json()["code"]) == (413, "import_too_large")
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_large_import_runs_as_job(
    make_user: Any, token_for: Any, client: Any, settings: Any, tmp_path: Any
) -> None:
    if settings.CELERY_BROKER_URL:
        pytest.skip("a broker is configured: test_worker.py covers the real worker")
    settings.TRADING_IMPORT_ASYNC_BYTES = 10
    settings.TRADING_IMPORT_DIR = str(tmp_path)
    staff = make_user("oak", is_staff=True)
    tok = token_for(staff)
    csv = b"id,firstName,lastName,dateOfBirth\n" + b"".join(b"t%d,A,B,01-02-1999\n" % i for i in range(500))
    r = client.post(
        f"{T}/import/trainers", {"file": SimpleUploadedFile("t.csv", csv)}, HTTP_AUTHORIZATION=f"Bearer {tok}"
    )
    assert r.status_code == 202, r.content
    job = r.json()
    assert job["url"] == f"/api/trading/import/jobs/{job['id']}"
    # Eager Celery: the task ran on commit of the upload's transaction.
    r = client.get(job["url"], HTTP_AUTHORIZATION=f"Bearer {tok}")
    body = r.json()
    assert (body["state"], body["rows_validated"], body["rows_written"]) == ("succeeded", 500, 500)
    assert body["result"]["created"] == 500
    assert Trainer.objects.count() == 500
    assert list(tmp_path.iterdir()) == []  # the stored upload is removed afterwards
    bad = csv + b"t1,dup,x,01-01-2000\n"
    r = client.post(
        f"{T}/import/trainers", {"file": SimpleUploadedFile("t.csv", bad)}, HTTP_AUTHORIZATION=f"Bearer {tok}"
    )
    body = client.get(r.json()["url"], HTTP_AUTHORIZATION=f"Bearer {tok}").json()
    assert body["state"] == "failed"
    assert body["errors"]["code"] == "import_invalid"
    assert body["errors"]["details"]["errors"][0]["row"] == 502
    assert ImportJob.objects.count() == 2
    assert Trainer.objects.count() == 500
    assert json.loads(json.dumps(body))  # JSON-serializable result


def test_offers_listing_requires_auth(world: Any, api_client: Any) -> None:
    assert_refused(api_client.call("GET", f"{T}/offers"), 401, "unauthorized")
    assert TradeOffer.objects.filter(state=OfferState.OPEN).count() == 0


def test_offers_are_private_to_their_two_trainers(
    world: Any, api_client: Any, make_user: Any, token_for: Any
) -> None:
    """A signed-in user who is neither side of an offer (nor staff) cannot list, read or act on it: 404 as for
    a missing offer, and nothing changes. Its trainers and staff see it."""
    offer = api_client.call(
        "POST",
        f"{T}/offers",
        {"proposer": "tr1", "receiver": "tr2", "give": ["pk1"], "ask": ["pk3"]},
        token=world.ash_token,
    ).json()
    stranger = token_for(make_user("gary"))
    listed = api_client.call("GET", f"{T}/offers", token=stranger).json()
    assert (listed["count"], listed["items"]) == (0, [])
    assert api_client.call("GET", f"{T}/offers?trainer=tr1", token=stranger).json()["count"] == 0
    before = (snapshot(), list(TradeOffer.objects.values_list("pk", "state")))
    for method, path in [
        ("GET", f"{T}/offers/{offer['id']}"),
        ("POST", f"{T}/offers/{offer['id']}/accept"),
        ("POST", f"{T}/offers/{offer['id']}/decline"),
        ("POST", f"{T}/offers/{offer['id']}/cancel"),
    ]:
        r = api_client.call(method, path, token=stranger)
        missing = api_client.call(
            method, path.replace(str(offer["id"]), str(offer["id"] + 999)), token=stranger
        )
        assert (r.status_code, r.json()["code"]) == (404, "offer_not_found"), path
        assert r.json() == missing.json()
    assert (snapshot(), list(TradeOffer.objects.values_list("pk", "state"))) == before
    for token in (world.ash_token, world.misty_token, world.staff_token):
        assert [o["id"] for o in api_client.call("GET", f"{T}/offers", token=token).json()["items"]] == [
            offer["id"]
        ]
        assert api_client.call("GET", f"{T}/offers/{offer['id']}", token=token).json()["id"] == offer["id"]
