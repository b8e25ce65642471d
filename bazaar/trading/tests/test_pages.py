"""The trading pages: a trainer's pokemon, profiles, a pokemon's history, offers in the browser, the staff
exchange and the import wizard. Each refusal is asserted with its status and words, and that nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from bazaar.core.testing import assert_page_refused
from bazaar.trading import services
from bazaar.trading.models import ImportJob, ImportPreview, OwnershipChange, TradeOffer
from bazaar.trading.tests.conftest import owners, snapshot

MOVE_PK1 = b"id,nickname,species,level,owner,dateOfOwnership\npk1,n1,Pikachu,10,tr2,01-01-2024\n"


@pytest.fixture(autouse=True)
def import_dir(settings: Any, tmp_path: Any) -> None:
    settings.TRADING_IMPORT_DIR = str(tmp_path)


def as_user(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


def text(r: Any) -> str:
    return str(r.content.decode())


#: The site's 404 and 403 pages (templates/404.html, 403.html).
NOT_FOUND_PAGE = "We could not find that page"
FORBIDDEN_PAGE = "You are not allowed to open this page"


def test_my_pokemon_search_sort_and_paging(world: Any, settings: Any) -> None:
    assert Client().get("/trading/me/")["Location"] == "/accounts/login/?next=/trading/me/"
    ash = as_user(world.ash)
    r = ash.get("/trading/me/")
    assert r.status_code == 200
    assert r["Cache-Control"] == "private, no-store"
    assert 'href="/trading/pokemon/pk1/"' in text(r)
    assert 'href="/trading/pokemon/pk2/"' in text(r)
    assert "pk3" not in text(r)  # Misty's
    r = ash.get("/trading/me/?q=onix")
    assert "pk2" in text(r)
    assert "/trading/pokemon/pk1/" not in text(r)
    r = ash.get("/trading/me/?level_min=15&level_max=100")
    assert ("/trading/pokemon/pk2/" in text(r), "/trading/pokemon/pk1/" in text(r)) == (True, False)
    r = ash.get("/trading/me/?sort=-level")
    assert text(r).index("/trading/pokemon/pk2/") < text(r).index("/trading/pokemon/pk1/")
    r = ash.get("/trading/me/?level_min=0")  # out of range: ignored, said so, still 200
    assert r.status_code == 200
    assert "levels are 1 to 100" in text(r)
    services.pokemon_create(public_id="pk9", nickname="n9", species="Abra", level=5, owner="tr1")
    from bazaar.trading import page_selectors

    found = page_selectors.pokemon_browse(owner=world_trainer("tr1"), per_page=2, page=2)
    assert [p.public_id for p in found] == ["pk9"]
    r = as_user(world.staff).get("/trading/me/")
    assert "not linked to a trainer" in text(r)


def world_trainer(public_id: str) -> Any:
    from bazaar.trading.models import Trainer

    return Trainer.objects.get(public_id=public_id)


def test_profile_and_pokemon_history_are_public(world: Any) -> None:
    r = Client().get("/trading/trainers/tr2/")
    assert r.status_code == 200
    assert r["Cache-Control"] == "no-cache"
    assert "/trading/pokemon/pk3/" in text(r)
    assert "Log in</a>" in text(r)
    r = as_user(world.ash).get("/trading/trainers/tr2/")
    assert r["Cache-Control"] == "private, no-store"
    assert 'href="/trading/trainers/tr2/offer/"' in text(r)
    assert_page_refused(Client().get("/trading/trainers/nobody/"), 404, NOT_FOUND_PAGE)
    offer = services.offer_create(proposer="tr1", receiver="tr2", give=["pk1"], ask=[])
    services.offer_accept(offer_id=offer.pk)
    r = Client().get("/trading/pokemon/pk1/")
    assert r.status_code == 200
    page = text(r)
    assert f"trade offer {offer.pk}" in page  # no link for a visitor who may not open the offer
    assert page.index("trade offer") < page.index("created")  # newest first
    r = as_user(world.misty).get("/trading/pokemon/pk1/")
    assert f'href="/trading/offers/{offer.pk}/"' in text(r)
    assert_page_refused(Client().get("/trading/pokemon/nope/"), 404, NOT_FOUND_PAGE)


def test_propose_accept_and_both_see_it(world: Any) -> None:
    ash, misty = as_user(world.ash), as_user(world.misty)
    r = ash.get("/trading/trainers/tr2/offer/")
    assert r.status_code == 200
    assert 'value="pk1"' in text(r)
    assert 'value="pk3"' in text(r)
    r = ash.post(
        "/trading/trainers/tr2/offer/",
        {"give": ["pk1"], "ask": ["pk3"], "message": "swap?", "expires_in_days": "2"},
    )
    offer = TradeOffer.objects.get()
    assert r.status_code == 302
    assert r["Location"] == f"/trading/offers/{offer.pk}/"
    assert (offer.message, offer.state, (offer.expires_at - offer.created_at).days) == ("swap?", "open", 2)
    inbox = text(misty.get("/trading/offers/?box=inbox"))
    assert f"/trading/offers/{offer.pk}/" in inbox
    assert f"/trading/offers/{offer.pk}/" in text(ash.get("/trading/offers/?box=outbox"))
    assert f"/trading/offers/{offer.pk}/" not in text(ash.get("/trading/offers/?box=inbox"))
    page = text(misty.get(f"/trading/offers/{offer.pk}/"))
    assert 'id="accept"' in page
    assert 'id="cancel"' not in page
    r = misty.post(f"/trading/offers/{offer.pk}/accept/", follow=True)
    assert r.status_code == 200
    assert "Offer accepted: the pokemon have changed hands." in text(r)
    assert owners()["pk1"] == "tr2"
    assert owners()["pk3"] == "tr1"
    assert "/trading/pokemon/pk3/" in text(ash.get("/trading/me/"))
    assert "/trading/pokemon/pk1/" in text(misty.get("/trading/me/"))


def test_offer_refusals_say_why_and_change_nothing(world: Any) -> None:
    ash, misty, stranger = as_user(world.ash), as_user(world.misty), as_user(world.staff)
    offer = services.offer_create(proposer="tr1", receiver="tr2", give=["pk1"], ask=["pk3"])
    before = snapshot()
    r = ash.post(f"/trading/offers/{offer.pk}/accept/")  # the proposer may not accept
    assert r.status_code == 403
    assert "Only the receiving trainer may accept." in text(r)
    r = misty.post(f"/trading/offers/{offer.pk}/cancel/")
    assert_page_refused(r, 403, "Only the proposing trainer may cancel.")
    assert snapshot() == before
    from bazaar.accounts.models import User

    other = User.objects.create_user(username="gary", password="x-very-long-pass")
    r = as_user(other).post(f"/trading/offers/{offer.pk}/accept/")
    assert_page_refused(r, 404, NOT_FOUND_PAGE)
    assert snapshot() == before
    assert_page_refused(as_user(other).get(f"/trading/offers/{offer.pk}/"), 404, NOT_FOUND_PAGE)
    r = ash.post("/trading/trainers/tr2/offer/", {"expires_in_days": "7"})  # nothing picked
    assert r.status_code == 422
    assert "Pick at least one pokemon" in text(r)
    r = ash.post("/trading/trainers/tr2/offer/", {"give": ["pk3"], "expires_in_days": "7"})  # not a choice
    assert_page_refused(r, 422, "pk3 is not one of the available choices.")
    assert snapshot() == before
    # pk3 changes hands: the open offer says so, and accepting it is refused 409 and closes it as invalid.
    services.exchange(trainer_a="tr2", trainer_b="tr3", a_gives=["pk3"], b_gives=[])
    page = text(misty.get(f"/trading/offers/{offer.pk}/"))
    assert "n3 (pk3) now belongs to tr3, not tr2." in page
    r = misty.post(f"/trading/offers/{offer.pk}/accept/")
    assert r.status_code == 409
    assert "The offer is no longer valid: pokemon changed hands." in text(r)
    assert TradeOffer.objects.get().state == "invalid"
    assert owners()["pk1"] == "tr1"
    r = misty.post(f"/trading/offers/{offer.pk}/decline/")
    assert (r.status_code, "Cannot decline an offer that is invalid." in text(r)) == (409, True)
    assert stranger.get(f"/trading/offers/{offer.pk}/").status_code == 200  # staff see every offer


def test_counter_offer_in_the_browser(world: Any) -> None:
    ash, misty = as_user(world.ash), as_user(world.misty)
    offer = services.offer_create(proposer="tr1", receiver="tr2", give=["pk1"], ask=["pk3"])
    assert_page_refused(
        ash.get(f"/trading/offers/{offer.pk}/counter/"),
        403,
        "Only the receiving trainer may counter an offer.",
    )
    r = misty.get(f"/trading/offers/{offer.pk}/counter/")
    assert r.status_code == 200
    assert 'value="pk3"' in text(r)
    assert 'value="pk2"' in text(r)
    r = misty.post(
        f"/trading/offers/{offer.pk}/counter/",
        {"give": ["pk3"], "ask": ["pk1", "pk2"], "expires_in_days": "7"},
    )
    counter = TradeOffer.objects.exclude(pk=offer.pk).get()
    assert r["Location"] == f"/trading/offers/{counter.pk}/"
    assert (counter.counter_to_id, counter.proposer.public_id) == (offer.pk, "tr2")
    page = text(ash.get(f"/trading/offers/{offer.pk}/"))
    assert f"countered by offer {counter.pk}" in page
    assert f'href="/trading/offers/{counter.pk}/"' in page
    r = misty.get(f"/trading/offers/{offer.pk}/counter/")  # the original is closed now
    assert_page_refused(r, 409, "it cannot be countered.")
    r = ash.post(f"/trading/offers/{counter.pk}/accept/", follow=True)
    assert "Offer accepted" in text(r)
    assert owners() == {"pk1": "tr2", "pk2": "tr2", "pk3": "tr1", "pk4": "tr2", "pk5": "tr3"}


def test_staff_exchange_page(world: Any) -> None:
    staff = as_user(world.staff)
    before = snapshot()
    assert_page_refused(as_user(world.ash).get("/trading/exchange/"), 403, FORBIDDEN_PAGE)
    r = as_user(world.ash).post(
        "/trading/exchange/", {"trainer_a": "tr1", "a_gives": "pk1", "trainer_b": "tr2"}
    )
    assert_page_refused(r, 403, FORBIDDEN_PAGE)
    assert snapshot() == before
    r = staff.post("/trading/exchange/", {"trainer_a": "tr1", "a_gives": "pk1 pk3", "trainer_b": "tr2"})
    assert r.status_code == 409
    assert "The exchange is not possible." in text(r)
    assert "pk3 does not belong to tr1" in text(r)
    assert snapshot() == before
    r = staff.post("/trading/exchange/", {"trainer_a": "tr1", "a_gives": "", "trainer_b": "tr2"})
    assert (r.status_code, "At least one side must give a pokemon." in text(r)) == (422, True)
    r = staff.post(
        "/trading/exchange/",
        {"trainer_a": "tr1", "a_gives": "pk1", "trainer_b": "tr2", "b_gives": "pk3, pk4"},
    )
    assert r.status_code == 302
    assert owners()["pk1"] == "tr2"
    assert owners()["pk4"] == "tr1"
    assert "Exchanged: tr1 gave pk1; tr2 gave pk3, pk4." in text(staff.get("/trading/exchange/"))


def _upload(client: Client, data: bytes, name: str = "p.csv") -> Any:
    return client.post("/trading/import/", {"file": SimpleUploadedFile(name, data, "text/csv"), "kind": ""})


def test_import_wizard_preview_confirm_results(world: Any, django_capture_on_commit_callbacks: Any) -> None:
    staff = as_user(world.staff)
    assert staff.get("/trading/import/").status_code == 200
    before = snapshot()
    r = _upload(staff, MOVE_PK1)
    preview = ImportPreview.objects.get()
    assert r["Location"] == f"/trading/import/previews/{preview.pk}/"
    page = text(staff.get(r["Location"]))
    assert snapshot() == before
    assert "owner: <del>tr1</del> → <ins>tr2</ins>" in page
    assert '<strong id="ownership-total">1</strong> ownership change' in page
    assert "?show=owner" in page
    assert "/trading/pokemon/" not in text(staff.get(f"{r['Location']}?show=new"))
    with django_capture_on_commit_callbacks(execute=True):
        r = staff.post(f"/trading/import/previews/{preview.pk}/confirm/")
    job = ImportJob.objects.get()
    assert r["Location"] == f"/trading/import/jobs/{job.pk}/"
    page = text(staff.get(r["Location"]))
    assert '<strong id="result-ownership">1</strong> ownership change' in page
    assert owners()["pk1"] == "tr2"
    last = OwnershipChange.objects.order_by("-id")[0]
    assert (last.cause, last.pokemon.public_id) == ("import", "pk1")
    progress = staff.get(f"/trading/import/jobs/{job.pk}/progress.json").json()
    assert (progress["done"], progress["state"], progress["percent"], progress["rows_total"]) == (
        True,
        "succeeded",
        100,
        1,
    )
    r = staff.post(f"/trading/import/previews/{preview.pk}/confirm/")  # double submit
    assert r.status_code == 409
    assert "cannot be confirmed" in text(r)


def test_a_stale_preview_is_refused_with_a_fresh_preview_offered(world: Any) -> None:
    staff = as_user(world.staff)
    _upload(staff, MOVE_PK1)
    preview = ImportPreview.objects.get()
    offer = services.offer_create(proposer="tr1", receiver="tr3", give=["pk1"], ask=[])
    services.offer_accept(offer_id=offer.pk)
    before = snapshot()
    r = staff.post(f"/trading/import/previews/{preview.pk}/confirm/")
    assert r.status_code == 409
    assert "The data changed since the preview" in text(r)
    assert 'id="again"' in text(r)
    assert snapshot() == before
    assert ImportJob.objects.count() == 0
    r = staff.post(f"/trading/import/previews/{preview.pk}/again/")
    fresh = ImportPreview.objects.exclude(pk=preview.pk).get()
    assert r["Location"] == f"/trading/import/previews/{fresh.pk}/"
    assert "owner: <del>tr3</del> → <ins>tr2</ins>" in text(staff.get(r["Location"]))


def test_import_refusals_are_pages(world: Any, settings: Any) -> None:
    staff = as_user(world.staff)
    assert as_user(world.ash).get("/trading/import/").status_code == 403
    assert Client().get("/trading/import/")["Location"] == "/accounts/login/?next=/trading/import/"
    r = _upload(staff, b"name,age\nbob,3\n")
    assert r.status_code == 422
    assert "The header matches neither a trainers nor a pokemon file." in text(r)
    r = _upload(staff, b"id,nickname,species,level,owner,dateOfOwnership\npk1,n,S,500,tr1,01-01-2024\n")
    preview = ImportPreview.objects.get()
    page = text(staff.get(r["Location"]))
    assert "1 error: nothing can be imported." in page
    assert "level &#x27;500&#x27; is not an integer from 1 to 100" in page
    assert staff.post(f"/trading/import/previews/{preview.pk}/confirm/").status_code == 409
    settings.TRADING_IMPORT_MAX_BYTES = 20
    before = snapshot()
    r = _upload(staff, MOVE_PK1)
    assert r.status_code == 413
    assert r["Content-Type"].startswith("text/html")
    assert "the largest file accepted here is 20\xa0bytes" in text(r)
    assert snapshot() == before
    assert ImportPreview.objects.count() == 1


def test_a_body_over_the_upload_limit_gets_a_page_not_json(world: Any, settings: Any) -> None:
    settings.MAX_UPLOAD_BYTES = 50
    r = as_user(world.staff).post("/trading/import/", {"file": SimpleUploadedFile("p.csv", MOVE_PK1 * 3)})
    assert r.status_code == 413
    assert r["Content-Type"].startswith("text/html")
    assert "The file is too large" in text(r)
    r = Client().post("/api/trading/import/pokemon", {"file": SimpleUploadedFile("p.csv", MOVE_PK1 * 3)})
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")


def test_a_background_import_shows_progress_then_results(world: Any, settings: Any) -> None:
    settings.TRADING_IMPORT_ASYNC_BYTES = 10
    staff = as_user(world.staff)
    _upload(staff, MOVE_PK1)
    preview = ImportPreview.objects.get()
    r = staff.post(f"/trading/import/previews/{preview.pk}/confirm/")
    job = ImportJob.objects.get()  # queued: the task is enqueued on commit (not in this test transaction)
    page = text(staff.get(r["Location"]))
    assert 'id="progress"' in page
    assert "Waiting for a worker" in page
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page
    progress = staff.get(f"/trading/import/jobs/{job.pk}/progress.json").json()
    assert (progress["done"], progress["phase"], progress["rows_total"]) == (False, "waiting for a worker", 1)
    services.import_job_run(job_id=job.pk)
    page = text(staff.get(r["Location"]))
    assert 'id="progress"' not in page
    assert '<strong id="result-ownership">1</strong>' in page
