"""Trading for people, end to end in headless Chromium at phone width (390 px): Ash proposes a trade from Misty's
profile (by keyboard), Misty accepts it, both see the new owners and the history; a counter-offer; staff upload a
CSV, see the ownership change in the preview, confirm, watch the progress bar and land on the results; a preview
made stale by a trade is refused with a fresh preview offered. Every page must fit 390 px without horizontal
scrolling. Screenshots (docs/screenshots/trading-*.png) only with BAZAAR_SCREENSHOTS=1."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bazaar.core.testing import CHROMIUM, CHROMIUM_ARGS, assert_page_fits, save_screenshot

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright runs an event loop in this thread

SHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
PASSWORD = "a-long-browser-password"
WIDTH = 390

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(settings: Any, tmp_path: Any) -> dict[str, Any]:
    from bazaar.accounts.models import User
    from bazaar.trading import services

    settings.TRADING_IMPORT_DIR = str(tmp_path)
    users = {
        "ash": User.objects.create_user(username="ash", password=PASSWORD),
        "misty": User.objects.create_user(username="misty", password=PASSWORD),
        "oak": User.objects.create_user(username="oak", password=PASSWORD, is_staff=True),
    }
    for tid, first, username in (("tr1", "Ash", "ash"), ("tr2", "Misty", "misty"), ("tr3", "Brock", None)):
        services.trainer_create(
            public_id=tid,
            first_name=first,
            last_name="T",
            date_of_birth=dt.date(1990, 1, 1),
            username=username,
        )
    for pid, nick, species, owner in (
        ("pk1", "Sparky", "Pikachu", "tr1"),
        ("pk2", "Rocky", "Onix", "tr1"),
        ("pk3", "Bubbles", "Squirtle", "tr2"),
        ("pk4", "Starry", "Staryu", "tr2"),
        ("pk5", "Stone", "Geodude", "tr3"),
    ):
        services.pokemon_create(public_id=pid, nickname=nick, species=species, level=12, owner=owner)
    return users


@pytest.fixture
def browser(live_server: Any) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def signed_in(browser: Any, base: str, username: str) -> Any:
    """A phone-sized page signed in through the real login form."""
    context = browser.new_context(viewport={"width": WIDTH, "height": 844}, base_url=base)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    return page


def fits(page: Any, name: str) -> None:
    """No horizontal scrolling at 390 px; optionally a screenshot."""
    assert_page_fits(page, width=WIDTH)
    if os.environ.get("BAZAAR_SCREENSHOTS") == "1":
        save_screenshot(page, SHOTS / f"trading-{name}.png", width=WIDTH)


def test_propose_accept_counter_and_history(live_server: Any, browser: Any, people: Any) -> None:
    from bazaar.trading.models import TradeOffer

    ash = signed_in(browser, live_server.url, "ash")
    misty = signed_in(browser, live_server.url, "misty")

    # Ash opens Misty's profile from the trainer list and proposes pk1 for pk3, by keyboard.
    ash.goto("/trading/")
    fits(ash, "trainers")
    ash.click("a[href='/trading/trainers/tr2/']  >> nth=0")
    fits(ash, "profile")
    ash.click("#propose")
    ash.focus("#give input[value=pk1]")
    ash.keyboard.press("Space")
    ash.focus("#ask input[value=pk3]")
    ash.keyboard.press("Space")
    ash.focus("#id_message")
    ash.keyboard.type("Sparky for Bubbles?")
    fits(ash, "propose")
    ash.focus("#send-offer")
    with ash.expect_navigation():
        ash.keyboard.press("Enter")
    offer = TradeOffer.objects.get()
    assert f"Offer {offer.pk} sent to Misty (tr2)." in ash.inner_text(".messages")
    assert ash.inner_text("#offer-state") == "open"
    fits(ash, "offer-sent")

    # Misty finds it in her inbox and accepts.
    misty.goto("/trading/offers/")
    fits(misty, "inbox")
    misty.click(f"a[href='/trading/offers/{offer.pk}/']")
    assert misty.inner_text("#offer-message") == "Sparky for Bubbles?"
    with misty.expect_navigation():
        misty.click("#accept")
    assert "Offer accepted: the pokemon have changed hands." in misty.inner_text(".messages")
    assert misty.inner_text("#offer-state") == "accepted"
    fits(misty, "accepted")

    # Both see the new owners and the history.
    ash.goto("/trading/me/")
    mine = ash.inner_text("#pokemon")
    assert "Bubbles" in mine
    assert "Sparky" not in mine
    fits(ash, "my-pokemon")
    misty.goto("/trading/pokemon/pk1/")
    history = misty.inner_text("#history")
    assert f"trade offer {offer.pk}" in history
    assert "tr1" in history
    assert "tr2" in history
    fits(misty, "pokemon-history")
    ash.goto("/trading/pokemon/pk3/")
    assert f"trade offer {offer.pk}" in ash.inner_text("#history")

    # A counter-offer: Ash offers Rocky for Starry; Misty answers asking for Rocky and Bubbles.
    ash.goto("/trading/trainers/tr2/offer/")
    ash.check("#give input[value=pk2]")
    ash.check("#ask input[value=pk4]")
    with ash.expect_navigation():
        ash.click("#send-offer")
    second = TradeOffer.objects.order_by("-pk")[0]
    misty.goto(f"/trading/offers/{second.pk}/")
    with misty.expect_navigation():
        misty.click("#counter")
    fits(misty, "counter")
    misty.check("#give input[value=pk4]")
    misty.check("#ask input[value=pk2]")
    misty.check("#ask input[value=pk3]")
    with misty.expect_navigation():
        misty.click("#send-offer")
    counter = TradeOffer.objects.order_by("-pk")[0]
    assert counter.counter_to_id == second.pk
    ash.goto(f"/trading/offers/{second.pk}/")
    assert ash.inner_text("#offer-state") == "declined"
    assert f"countered by offer {counter.pk}" in ash.inner_text("#offer-reason")
    ash.click(f"#offer-reason a[href='/trading/offers/{counter.pk}/']")
    with ash.expect_navigation():
        ash.click("#accept")
    assert "Offer accepted" in ash.inner_text(".messages")
    fits(ash, "counter-accepted")


def test_import_preview_confirm_progress_results_and_stale(
    live_server: Any, browser: Any, people: Any, monkeypatch: Any, settings: Any
) -> None:
    from bazaar.trading import services
    from bazaar.trading.models import ImportJob
    from bazaar.trading.tasks import run_import_job

    oak = signed_in(browser, live_server.url, "oak")
    moves = b"id,nickname,species,level,owner,dateOfOwnership\r\npk1,Sparky,Pikachu,12,tr2,01-01-2024\r\n"

    def upload(data: bytes) -> None:
        oak.goto("/trading/import/")
        oak.set_input_files("#id_file", files=[{"name": "moves.csv", "mimeType": "text/csv", "buffer": data}])
        with oak.expect_navigation():
            oak.click("#preview")

    # A large file (here: anything over 10 bytes) is imported in the background; no worker picks it up until the
    # test says so, so the progress page is seen first.
    settings.TRADING_IMPORT_ASYNC_BYTES = 10
    monkeypatch.setattr(run_import_job, "delay", lambda job_id: None)
    oak.goto("/trading/exchange/")
    oak.fill("#id_trainer_a", "tr1")
    oak.fill("#id_a_gives", "pk3")
    oak.fill("#id_trainer_b", "tr2")
    with oak.expect_navigation():
        oak.click("#exchange")
    assert oak.inner_text("#exchange-problems") == "pk3 does not belong to tr1"
    fits(oak, "exchange-refused")
    oak.goto("/trading/import/")
    assert "Files up to 150.0\xa0MB" in oak.inner_text("#limits")
    fits(oak, "import")
    upload(moves)
    assert "tr1 → tr2" in oak.inner_text("#rows .move")
    assert oak.inner_text("#ownership-total") == "1"
    fits(oak, "preview")
    with oak.expect_navigation():
        oak.click("#confirm")
    assert "Waiting for a worker" in oak.inner_text("#progress-phase")
    fits(oak, "progress")
    oak.reload()  # the progress survives a reload
    assert oak.locator("#progress-bar").count() == 1
    job = ImportJob.objects.get()
    services.import_job_run(job_id=job.pk)
    oak.wait_for_selector("#results", timeout=10_000)  # the page polls, then shows the results
    assert oak.inner_text("#result-ownership") == "1"
    fits(oak, "results")

    # A file with errors: line and column in words, nothing to confirm.
    upload(b"id,nickname,species,level,owner,dateOfOwnership\npk1,Sparky,Pikachu,500,nobody,31-02-2024\n")
    errors = oak.inner_text("#errors")
    assert "level '500' is not an integer from 1 to 100" in errors
    assert oak.locator("#confirm").count() == 0
    fits(oak, "invalid")
    # Over the size limit: a page that says so.
    max_bytes, settings.TRADING_IMPORT_MAX_BYTES = settings.TRADING_IMPORT_MAX_BYTES, 20
    upload(moves)
    assert "the largest file accepted here is 20" in oak.inner_text("#too-large")
    fits(oak, "too-large")
    settings.TRADING_IMPORT_MAX_BYTES = max_bytes

    # Stale: the preview says pk1 goes tr2 -> tr1; meanwhile Misty trades pk1 to Brock.
    settings.TRADING_IMPORT_ASYNC_BYTES = 1 << 20
    upload(moves.replace(b"tr2", b"tr1"))
    assert "tr2 → tr1" in oak.inner_text("#rows .move")
    services.exchange(trainer_a="tr2", trainer_b="tr3", a_gives=["pk1"], b_gives=[])
    oak.click("#confirm")
    oak.wait_for_selector("#preview-error")
    assert "The data changed since the preview" in oak.inner_text("#preview-error")
    assert oak.evaluate("performance.getEntriesByType('navigation')[0].responseStatus") == 409
    fits(oak, "stale")
    with oak.expect_navigation():
        oak.click("#again")
    assert "tr3 → tr1" in oak.inner_text("#rows .move")
    with oak.expect_navigation():
        oak.click("#confirm")
    assert oak.inner_text("#result-ownership") == "1"
