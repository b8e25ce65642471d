"""The catalogue (issue #18): search that folds accents and case and tolerates a typo, paging, title pages with each
copy's status and due date and the queue; "Place hold" only on a signed-in patron's private rendering; every write
that changes the shared title page invalidates it. The patron's own account: loans, renew, holds, history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from bazaar.rentals import render, selectors, services
from bazaar.rentals.models import Customer, Hold, Rental

pytestmark = pytest.mark.django_db


@pytest.fixture
def shelf(make_title: Any) -> dict[str, Any]:
    return {
        "solitude": make_title(
            title="One Hundred Years of Solitude", author="Gabriel García Márquez", copies=1
        ),
        "petals": make_title(title="Petals of Blood", author="Ngũgĩ wa Thiong'o", copies=2),
        "solaris": make_title(title="Solaris", author="Stanisław Lem", copies=1),
        "earthsea": make_title(title="A Wizard of Earthsea", author="Ursula K. Le Guin", copies=1),
    }


@pytest.fixture
def patron(make_user: Any, make_customer: Any) -> tuple[Any, Customer]:
    user = make_user("asha")
    card = make_customer(name="Asha Kamau", email="asha@example.com")
    services.customer_link_user(customer_id=card.pk, user=user)
    return user, card


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("garcia", ["One Hundred Years of Solitude"]),
        ("GARCÍA márquez", ["One Hundred Years of Solitude"]),
        ("ngugi", ["Petals of Blood"]),
        ("stanislaw", ["Solaris"]),
        ("earthsae", ["A Wizard of Earthsea"]),  # one letter swapped
        ("garsia", ["One Hundred Years of Solitude"]),  # one letter wrong
        ("solitude garcia", ["One Hundred Years of Solitude"]),
        ("xylophone", []),
    ],
)
def test_search_folds_accents_and_case_and_tolerates_a_typo(shelf: Any, q: str, found: list[str]) -> None:
    assert [t.title for t in selectors.title_search(q)] == found


def test_a_title_match_ranks_above_an_author_match(make_title: Any) -> None:
    make_title(title="Other", author="Dune Writer")
    make_title(title="Dune", author="Frank Herbert")
    assert [t.title for t in selectors.title_search("dune")] == ["Dune", "Other"]


@pytest.mark.postgres
def test_search_on_postgres_uses_unaccent_and_trigrams(shelf: Any) -> None:
    assert [t.title for t in selectors.title_search("ngugi")] == ["Petals of Blood"]
    assert [t.title for t in selectors.title_search("garcia")] == ["One Hundred Years of Solitude"]
    assert next(t.title for t in selectors.title_search("earthsae")) == "A Wizard of Earthsea"
    assert [t.title for t in selectors.title_search("stanislaw")] == ["Solaris"]


def test_catalogue_pages(client: Client, make_title: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(render, "PAGE_SIZE", 2)
    for n in range(5):
        make_title(title=f"Volume {n}")
    page = client.get("/rentals/").content.decode()
    assert "Titles 1–2 of 5." in page
    assert 'href="?page=2" rel="next"' in page
    page = client.get("/rentals/?page=3").content.decode()
    assert ("Volume 4" in page, "Volume 3" in page, 'rel="prev"' in page) == (True, False, True)
    for bad in ("0", "x"):
        r = client.get(f"/rentals/?page={bad}")
        assert (r.status_code, "We could not find that page" in r.content.decode()) == (404, True)


def test_title_page_shows_copies_due_dates_and_queue_and_stays_the_same_for_every_anonymous_visitor(
    client: Client, make_title: Any, make_customer: Any, patron: Any
) -> None:
    title = make_title(title="Dune", copies=2)
    rental = services.rental_rent(customer_id=make_customer(name="Brian Otieno").pk, title_id=title.pk)
    services.hold_place(customer_id=patron[1].pk, title_id=title.pk)
    url = f"/rentals/titles/{title.pk}/"
    first = client.get(url)
    second = Client().get(url)
    assert first.content == second.content
    html = first.content.decode()
    assert f"out, due {timezone.localtime(rental.due_at):%a %-d %b %Y}" in html
    assert html.count("on the shelf") == 1
    assert "1 patron waiting." in html
    assert "csrfmiddlewaretoken" not in html
    assert "Brian" not in html
    assert "Place hold</button>" not in html
    assert f'href="/accounts/login/?next=/rentals/titles/{title.pk}/">Sign in to place a hold' in html

    client.force_login(patron[0])
    signed = client.get(url)
    assert signed["Cache-Control"] == "private, no-store"
    assert f'action="/rentals/titles/{title.pk}/hold/"' in signed.content.decode()


def test_every_write_that_changes_the_title_page_invalidates_it(
    client: Client, make_title: Any, make_customer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    title = make_title(title="Dune", copies=1)
    asha, brian = make_customer(name="Asha Kamau"), make_customer(name="Brian Otieno")
    url = f"/rentals/titles/{title.pk}/"

    def page_after(write: Any) -> str:
        client.get(url)  # cached now
        with django_capture_on_commit_callbacks(execute=True):
            write()
        return client.get(url).content.decode()

    holder: dict[str, Any] = {}
    assert "out, due" in page_after(
        lambda: holder.update(r=services.rental_rent(customer_id=asha.pk, title_id=title.pk))
    )
    before = Rental.objects.get(pk=holder["r"].pk).due_at
    renewed = page_after(lambda: services.rental_renew(rental_id=holder["r"].pk))
    after = timezone.localtime(Rental.objects.get(pk=holder["r"].pk).due_at)
    assert after > before
    assert f"out, due {after:%a %-d %b %Y}" in renewed
    assert "1 patron waiting." in page_after(
        lambda: holder.update(h=services.hold_place(customer_id=brian.pk, title_id=title.pk))
    )
    assert "Nobody is waiting." in page_after(lambda: services.hold_cancel(hold_id=holder["h"].pk))
    assert "on the shelf" in page_after(lambda: services.rental_return(rental_id=holder["r"].pk))


def test_a_patron_places_a_hold_and_sees_it_in_their_account(
    client: Client, make_title: Any, make_customer: Any, patron: Any
) -> None:
    user, card = patron
    title = make_title(title="Dune", copies=1)
    services.rental_rent(customer_id=make_customer().pk, title_id=title.pk)
    client.force_login(user)
    r = client.post(f"/rentals/titles/{title.pk}/hold/")
    assert (r.status_code, r["Location"]) == (302, "/rentals/account/")
    page = client.get("/rentals/account/")
    assert page["Cache-Control"] == "private, no-store"
    assert "Dune</a> —\n    number 1 in the queue" in page.content.decode()
    holds = list(Hold.objects.values_list("customer_id", "title_id", "closed_at"))
    r = client.post(f"/rentals/titles/{title.pk}/hold/")
    assert (r.status_code, "The customer already waits for this title." in r.content.decode()) == (409, True)
    r = client.post("/rentals/titles/987654/hold/")
    assert (r.status_code, "We could not find that page" in r.content.decode()) == (404, True)
    assert (
        list(Hold.objects.values_list("customer_id", "title_id", "closed_at"))
        == holds
        == [(card.pk, title.pk, None)]
    )


def test_the_account_renews_and_cancels_only_the_patrons_own(
    client: Client, make_title: Any, make_customer: Any, patron: Any
) -> None:
    user, card = patron
    other = make_customer(name="Brian Otieno")
    mine = services.rental_rent(customer_id=card.pk, title_id=make_title(title="Mine").pk)
    theirs = services.rental_rent(customer_id=other.pk, title_id=make_title(title="Theirs").pk)
    their_hold = services.hold_place(customer_id=other.pk, title_id=make_title(title="Wanted").pk)
    client.force_login(user)
    page = client.get("/rentals/account/").content.decode()
    assert ("Mine" in page, "Theirs" in page, "Brian" in page) == (True, False, False)
    before = list(Rental.objects.order_by("pk").values_list("due_at", "renewals"))
    r = client.post(f"/rentals/account/loans/{theirs.pk}/renew/")
    assert (r.status_code, "We could not find that page" in r.content.decode()) == (404, True)
    r = client.post(f"/rentals/account/holds/{their_hold.pk}/cancel/")
    assert (r.status_code, "We could not find that page" in r.content.decode()) == (404, True)
    assert list(Rental.objects.order_by("pk").values_list("due_at", "renewals")) == before
    assert Hold.objects.get(pk=their_hold.pk).closed_at is None
    Rental.objects.filter(pk=mine.pk).update(renewals=2)
    r = client.post(f"/rentals/account/loans/{mine.pk}/renew/")
    assert (
        r.status_code,
        "Not renewed: The rental was renewed 2 times; the limit is 2." in r.content.decode(),
    ) == (
        409,
        True,
    )
    Rental.objects.filter(pk=mine.pk).update(renewals=0)
    assert client.post(f"/rentals/account/loans/{mine.pk}/renew/").status_code == 302
    assert Rental.objects.get(pk=mine.pk).renewals == 1


def test_reading_history_can_be_turned_off(client: Client, make_title: Any, patron: Any) -> None:
    user, card = patron
    rental = services.rental_rent(customer_id=card.pk, title_id=make_title(title="Read Before").pk)
    Rental.objects.filter(pk=rental.pk).update(rented_at=timezone.now() - timedelta(days=2))
    services.rental_return(rental_id=rental.pk)
    client.force_login(user)
    assert "Read Before" in client.get("/rentals/account/").content.decode().split('id="history"')[1]
    assert client.post("/rentals/account/history/", {}).status_code == 302
    assert Customer.objects.get(pk=card.pk).keep_history is False
    page = client.get("/rentals/account/").content.decode()
    assert ("Read Before" in page, "History is off." in page) == (False, True)
    client.post("/rentals/account/history/", {"keep": "on"})
    assert Customer.objects.get(pk=card.pk).keep_history is True


def test_without_a_card_the_account_says_how_to_get_one(client: Client, make_user: Any) -> None:
    assert client.get("/rentals/account/")["Location"] == "/accounts/login/?next=/rentals/account/"
    client.force_login(make_user("walk-in"))
    r = client.get("/rentals/account/")
    assert (r.status_code, "has no library card linked to it yet" in r.content.decode()) == (200, True)
    customers = list(Customer.objects.values_list("pk", "keep_history", "user_id"))
    r = client.post("/rentals/account/history/", {"keep": "on"})
    assert (r.status_code, "We could not find that page" in r.content.decode()) == (404, True)
    assert list(Customer.objects.values_list("pk", "keep_history", "user_id")) == customers
