"""The circulation desk (issue #18): patron lookup, a checkout session of scans, refusals in words, check-in with
a receipt and a hold put aside, renewals, holds, payments, statements, patron registration and blocks. Every
refusal is asserted with its status and words, and that nothing was written."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from bazaar.rentals import services
from bazaar.rentals.models import Copy, Customer, CustomerStatus, Hold, Payment, Rental

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(client: Client, clerk: Any) -> Client:
    client.force_login(clerk)
    return client


def _world() -> tuple[Any, ...]:
    """Everything a desk page could write, to compare before and after a refusal."""
    return (
        list(Rental.objects.order_by("pk").values_list("pk", "due_at", "returned_at", "renewals", "charge")),
        list(Copy.objects.order_by("pk").values_list("pk", "state")),
        list(Customer.objects.order_by("pk").values_list("pk", "name", "email", "phone", "status")),
        list(Hold.objects.order_by("pk").values_list("pk", "closed_at", "ready_at")),
        list(Payment.objects.order_by("pk").values_list("pk", "amount", "method")),
    )


def _barcodes(title: Any) -> list[str]:
    return list(Copy.objects.filter(title=title).order_by("pk").values_list("barcode", flat=True))


def _patron_url(customer: Any, rest: str = "") -> str:
    return f"/rentals/desk/patrons/{customer.pk}/{rest}"


def test_patron_lookup_by_name_email_phone_and_card_number(desk: Client, make_customer: Any) -> None:
    asha = make_customer(name="Asha Kamau", email="asha@example.com", phone="+254 700 000 042")
    make_customer(name="Brian Otieno", email="brian@example.com", phone="")
    for q in ("asha", "KAMAU", "asha@example", "0700 000 042"):
        page = desk.get("/rentals/desk/patrons/", {"q": q}).content.decode()
        assert f'href="/rentals/desk/patrons/{asha.pk}/">#{asha.pk} Asha Kamau</a>' in page, q
        assert "Brian" not in page, q
    r = desk.get("/rentals/desk/patrons/", {"q": str(asha.pk)})
    assert (r.status_code, r["Location"]) == (302, f"/rentals/desk/patrons/{asha.pk}/")
    assert "No patron matches “zzz”." in desk.get("/rentals/desk/patrons/", {"q": "zzz"}).content.decode()
    r = desk.get("/rentals/desk/patrons/suggest/", {"q": "kam"})
    assert r["Cache-Control"] == "private, no-store"
    assert json.loads(r.content) == {
        "items": [
            {
                "id": asha.pk,
                "label": f"#{asha.pk} Asha Kamau · asha@example.com · +254 700 000 042",
                "url": f"/rentals/desk/patrons/{asha.pk}/",
            }
        ]
    }


def test_a_checkout_session_lends_scan_after_scan_and_shows_each_refusal_in_words(
    desk: Client, make_title: Any, make_customer: Any
) -> None:
    asha = make_customer(name="Asha Kamau")
    other = make_customer(name="Brian Otieno")
    books = [make_title(title=f"Book {n}", copies=1) for n in range(3)]
    taken = make_title(title="Taken", copies=1)
    out = services.rental_rent(customer_id=other.pk, title_id=taken.pk)
    for book in books:
        r = desk.post(_patron_url(asha, "checkout/"), {"barcode": _barcodes(book)[0]})
        assert (r.status_code, r["Location"]) == (302, _patron_url(asha))
    assert Rental.objects.filter(customer=asha, returned_at__isnull=True).count() == 3
    page = desk.get(_patron_url(asha)).content.decode()
    lines = page.split('id="checkout-lines"')[1].split("</ol>")[0]
    assert lines.count('class="ok"') == 3
    for n, book in enumerate(books):
        assert f"Book {n} ({_barcodes(book)[0]}), due " in lines
    assert 'autofocus="autofocus"' in page  # the scan field has the focus

    before = _world()
    r = desk.post(_patron_url(asha, "checkout/"), {"barcode": _barcodes(taken)[0]})
    due = timezone.localtime(out.due_at)
    words = f"rented to #{other.pk} Brian O., due {due.day} {due:%b}"
    assert r.status_code == 409
    assert f"{_barcodes(taken)[0]}: not lent. The copy is {words}." in r.content.decode()
    r = desk.post(_patron_url(asha, "checkout/"), {"barcode": "NO-SUCH"})
    assert (r.status_code, "NO-SUCH: No such copy." in r.content.decode()) == (404, True)
    r = desk.post(_patron_url(asha, "checkout/"), {"barcode": ""})
    assert (r.status_code, "This field is required." in r.content.decode()) == (422, True)
    assert _world() == before

    r = desk.post(_patron_url(asha, "done/"))
    assert (r.status_code, r["Location"]) == (302, "/rentals/desk/")
    page = desk.get(_patron_url(asha)).content.decode()
    assert "<li" not in page.split('id="checkout-lines"')[1].split("</ol>")[0]  # a new session starts empty
    assert 'id="lines-hint"' in page


def test_a_scan_asked_for_json_answers_its_line_and_the_loans_table_without_a_page(
    desk: Client, make_title: Any, make_customer: Any
) -> None:
    """desk.js posts each scan with ``Accept: application/json``: the answer is the line (or the refusal in words
    with the service's status and code) and the loans table as it is now; the line is in the session too, so a
    reload shows the same list. A refusal writes nothing."""
    asha, other = make_customer(name="Asha Kamau"), make_customer(name="Brian Otieno")
    book, taken = make_title(title="Kintu", copies=1), make_title(title="Taken", copies=1)
    out = services.rental_rent(customer_id=other.pk, title_id=taken.pk)
    url, json_accept = _patron_url(asha, "checkout/"), {"Accept": "application/json"}

    r = desk.post(url, {"barcode": _barcodes(book)[0]}, headers=json_accept)
    rental = Rental.objects.get(customer=asha, returned_at__isnull=True)
    due = timezone.localtime(rental.due_at)
    body = r.json()
    assert (r.status_code, r["Content-Type"], r["Cache-Control"]) == (
        200,
        "application/json",
        "private, no-store",
    )
    assert body["ok"] is True
    assert body["rental"] == rental.pk
    assert body["line"] == {
        "ok": True,
        "text": f"Kintu ({_barcodes(book)[0]}), due {due:%a} {due.day} {due:%b %Y}",
    }
    assert "Loans <span" in body["loans_html"]
    assert "(1)" in body["loans_html"]
    assert f"<code>{_barcodes(book)[0]}</code>" in body["loans_html"]
    assert f'action="/rentals/desk/patrons/{asha.pk}/renew/"' in body["loans_html"]
    assert body["blocks_html"].strip() == ""  # one loan: nothing stops her borrowing

    before = _world()
    r = desk.post(url, {"barcode": _barcodes(taken)[0]}, headers=json_accept)
    words = f"rented to #{other.pk} Brian O., due {timezone.localtime(out.due_at).day} {timezone.localtime(out.due_at):%b}"
    assert (r.status_code, r.json()["ok"], r.json()["code"]) == (409, False, "copy_not_available")
    assert r.json()["line"] == {"ok": False, "text": f"{_barcodes(taken)[0]}: not lent. The copy is {words}."}
    assert "loans_html" not in r.json()
    r = desk.post(url, {"barcode": "NO-SUCH"}, headers=json_accept)
    assert (r.status_code, r.json()["code"], r.json()["line"]["text"]) == (
        404,
        "copy_not_found",
        "NO-SUCH: No such copy.",
    )
    r = desk.post(url, {"barcode": ""}, headers=json_accept)
    assert (r.status_code, r.json()) == (
        422,
        {"ok": False, "line": None, "code": "invalid_barcode", "message": "This field is required."},
    )
    r = desk.post(url, {"barcode": "x" * 65}, headers=json_accept)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_barcode")
    r = desk.post(
        "/rentals/desk/patrons/999999/checkout/", {"barcode": _barcodes(book)[0]}, headers=json_accept
    )
    assert (r.status_code, r.json()["code"]) == (404, "customer_not_found")
    assert _world() == before

    # The same lines on the page a reload shows (what was answered, in order).
    page = desk.get(_patron_url(asha)).content.decode()
    lines = page.split('id="checkout-lines"')[1].split("</ol>")[0]
    assert lines.count('class="ok"') == 1
    assert lines.count('class="refused"') == 2
    assert lines.index("Kintu") < lines.index("Brian O.") < lines.index("NO-SUCH")


def test_the_limit_and_a_block_refuse_the_scan_with_the_reason(
    desk: Client, make_title: Any, make_customer: Any, settings: Any
) -> None:
    settings.RENTALS_MAX_OPEN_RENTALS = 1
    asha = make_customer(name="Asha Kamau")
    first, second = make_title(copies=1), make_title(copies=1)
    r = desk.post(
        _patron_url(asha, "checkout/"),
        {"barcode": _barcodes(first)[0]},
        headers={"Accept": "application/json"},
    )
    # The scan that reaches the limit answers the panel's blocks as they are now.
    assert (
        r.json()["blocks_html"].strip()
        == '<ul class="blocks" id="blocks"><li>1 loans out; the limit is 1.</li></ul>'
    )
    before = _world()
    r = desk.post(_patron_url(asha, "checkout/"), {"barcode": _barcodes(second)[0]})
    assert r.status_code == 409
    assert "The customer has 1 open rentals; the limit is 1." in r.content.decode()
    assert "1 loans out; the limit is 1." in r.content.decode()  # the panel's blocks
    services.customer_update(customer_id=asha.pk, status=CustomerStatus.BLOCKED)
    before = _world()
    r = desk.post(_patron_url(asha, "checkout/"), {"barcode": _barcodes(second)[0]})
    assert (r.status_code, "The customer is blocked." in r.content.decode()) == (409, True)
    assert _world() == before
    r = desk.post(_patron_url(asha, "status/"), {"status": "active"})
    assert r.status_code == 302
    assert Customer.objects.get(pk=asha.pk).status == CustomerStatus.ACTIVE
    desk.post(_patron_url(asha, "status/"), {"status": "blocked"})
    assert Customer.objects.get(pk=asha.pk).status == CustomerStatus.BLOCKED


def test_check_in_gives_a_receipt_line_by_line_and_puts_the_copy_aside_for_the_first_hold(
    desk: Client, make_title: Any, make_customer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    title = make_title(title="Petals of Blood", kind="novel", copies=1)
    reader = make_customer(name="Ged Sparrowhawk")
    first = make_customer(name="Tenar Arha", email="tenar@example.com")
    second = make_customer(name="Lebannen Arren")
    rental = services.rental_rent(customer_id=reader.pk, title_id=title.pk)
    Rental.objects.filter(pk=rental.pk).update(
        rented_at=timezone.now() - timedelta(days=4, hours=1), due_at=timezone.now() - timedelta(hours=1)
    )
    hold = services.hold_place(customer_id=first.pk, title_id=title.pk)
    later = services.hold_place(customer_id=second.pk, title_id=title.pk)
    with django_capture_on_commit_callbacks(execute=True):
        r = desk.post("/rentals/desk/return/", {"barcode": _barcodes(title)[0]}, follow=True)
    assert r.redirect_chain == [(f"/rentals/desk/returns/{rental.pk}/", 302)]
    page = r.content.decode()
    assert f"Put aside for #{first.pk} Tenar A.</strong>" in page
    assert '<td>4 days at 1.50</td><td class="num">6.00</td>' in page
    assert '<td>Overdue fine: none</td><td class="num">0.00</td>' in page
    assert 'id="charge">6.00<' in page
    hold.refresh_from_db()
    later.refresh_from_db()
    assert hold.ready_at is not None
    assert hold.expires_at == hold.ready_at + timedelta(days=7)
    assert later.ready_at is None
    assert [m.to for m in mail.outbox] == [["tenar@example.com"]]
    assert mail.outbox[0].subject == "Your hold is ready: 'Petals of Blood'"

    copy = Copy.objects.get(barcode=_barcodes(title)[0])
    assert (copy.state, hold.copy_id) == ("on_hold", copy.pk)
    assert "on the hold shelf" in desk.get(f"/rentals/titles/{title.pk}/").content.decode()

    before = _world()
    r = desk.post("/rentals/desk/return/", {"barcode": copy.barcode})
    assert (r.status_code, "The copy is not rented." in r.content.decode()) == (409, True)
    # Only the patron it is put aside for can borrow it.
    r = desk.post(_patron_url(second, "checkout/"), {"barcode": copy.barcode})
    assert r.status_code == 409
    assert f"{copy.barcode}: not lent. The copy is put aside for #{first.pk} Tenar A." in r.content.decode()
    assert _world() == before
    r = desk.post(_patron_url(first, "checkout/"), {"barcode": copy.barcode})
    assert r.status_code == 302
    hold.refresh_from_db()
    assert hold.closed_at is not None
    assert Copy.objects.get(pk=copy.pk).state == "rented"
    assert Rental.objects.get(copy=copy, returned_at__isnull=True).customer_id == first.pk
    assert Hold.objects.get(pk=later.pk).closed_at is None  # still waiting for the next copy


def test_renew_one_and_all_with_the_reason_when_a_hold_blocks_it(
    desk: Client, make_title: Any, make_customer: Any
) -> None:
    asha, waiting = make_customer(name="Asha Kamau"), make_customer(name="Brian Otieno")
    free, wanted = make_title(title="Free", copies=1), make_title(title="Wanted", copies=1)
    a = services.rental_rent(customer_id=asha.pk, title_id=free.pk)
    b = services.rental_rent(customer_id=asha.pk, title_id=wanted.pk)
    services.hold_place(customer_id=waiting.pk, title_id=wanted.pk)
    r = desk.post(_patron_url(asha, "renew/"), {"rental": a.pk})
    assert r.status_code == 302
    a_due = Rental.objects.get(pk=a.pk).due_at
    assert Rental.objects.get(pk=a.pk).renewals == 1
    before = _world()
    r = desk.post(_patron_url(asha, "renew/"), {"rental": b.pk})
    assert (r.status_code, "Another customer is waiting for this title." in r.content.decode()) == (409, True)
    r = desk.post(_patron_url(asha, "renew/"), {})
    assert (r.status_code, "Choose a loan to renew, or renew all." in r.content.decode()) == (422, True)
    r = desk.post(_patron_url(waiting, "renew/"), {"rental": a.pk})  # not this patron's loan
    assert (r.status_code, "No such rental." in r.content.decode()) == (404, True)
    assert _world() == before

    page = desk.post(_patron_url(asha, "renew/"), {"all": "on"}, follow=True).content.decode()
    assert "Renewed “Free”: due " in page
    assert "Not renewed “Wanted”: Another customer is waiting for this title." in page
    assert Rental.objects.get(pk=a.pk).renewals == 2
    assert Rental.objects.get(pk=a.pk).due_at > a_due
    assert Rental.objects.get(pk=b.pk).renewals == 0


def test_partial_payment_with_method_and_receipt(desk: Client, make_title: Any, make_customer: Any) -> None:
    asha = make_customer(name="Asha Kamau")
    rental = services.rental_rent(customer_id=asha.pk, title_id=make_title(kind="fiction").pk)
    rental.rented_at = timezone.now() - timedelta(days=5)
    Rental.objects.filter(pk=rental.pk).update(rented_at=rental.rented_at)
    services.rental_return(rental_id=rental.pk, returned_at=rental.rented_at + timedelta(days=4))
    assert Rental.objects.get(pk=rental.pk).charge == Decimal("12.00")
    r = desk.post(_patron_url(asha, "payments/"), {"amount": "5.50", "method": "card", "note": "part"})
    payment = Payment.objects.get(customer=asha)
    assert (r.status_code, r["Location"]) == (302, f"/rentals/desk/payments/{payment.pk}/")
    assert (payment.amount, payment.method, payment.note) == (Decimal("5.50"), "card", "part")
    page = desk.get(r["Location"]).content.decode()
    assert 'id="paid">5.50<' in page
    assert "by card (part)" in page
    assert 'id="balance-after">6.50<' in page
    before = _world()
    for data, status, words in [
        ({"amount": "-1", "method": "cash"}, 422, "amount must be positive with at most 2 decimals."),
        ({"amount": "1.001", "method": "cash"}, 422, "amount must be positive with at most 2 decimals."),
        ({"amount": "1", "method": "gold"}, 422, "Select a valid choice."),
    ]:
        r = desk.post(_patron_url(asha, "payments/"), data)
        assert (r.status_code, words in r.content.decode()) == (status, True), data
    assert _world() == before
    page = desk.get(_patron_url(asha, "statement/")).content.decode()
    assert 'id="statement-balance">6.50<' in page
    assert "charged <strong>12.00</strong>, paid <strong>5.50</strong>" in page


def test_register_edit_and_refuse_a_bad_patron(desk: Client) -> None:
    r = desk.post(
        "/rentals/desk/patrons/new/", {"name": " Asha Kamau ", "email": "asha@example.com", "phone": "0700"}
    )
    asha = Customer.objects.get()
    assert (r.status_code, r["Location"]) == (302, f"/rentals/desk/patrons/{asha.pk}/")
    assert (asha.name, asha.email, asha.phone) == ("Asha Kamau", "asha@example.com", "0700")
    before = _world()
    r = desk.post("/rentals/desk/patrons/new/", {"name": "X", "email": "not-an-email"})
    assert (r.status_code, "The e-mail address is not valid." in r.content.decode()) == (422, True)
    r = desk.post(_patron_url(asha, "edit/"), {"name": "Asha K", "phone": "call me"})
    assert (r.status_code, "The phone number is not valid." in r.content.decode()) == (422, True)
    r = desk.post("/rentals/desk/patrons/new/", {"name": ""})
    assert (r.status_code, "This field is required." in r.content.decode()) == (422, True)
    assert _world() == before
    r = desk.post(_patron_url(asha, "edit/"), {"name": "Asha Wanjiru Kamau", "email": "", "phone": ""})
    assert r.status_code == 302
    assert Customer.objects.filter(pk=asha.pk).values_list("name", "email", "phone").get() == (
        "Asha Wanjiru Kamau",
        "",
        "",
    )


def test_holds_from_the_desk_with_queue_positions(desk: Client, make_title: Any, make_customer: Any) -> None:
    asha, brian = make_customer(name="Asha Kamau"), make_customer(name="Brian Otieno")
    title = make_title(title="Dune", copies=1)
    services.hold_place(customer_id=brian.pk, title_id=title.pk)
    assert desk.post(_patron_url(asha, "holds/"), {"title": title.pk}).status_code == 302
    page = desk.get(_patron_url(asha)).content.decode()
    assert "Dune</a> —\n    number 2 in the queue" in page
    before = _world()
    r = desk.post(_patron_url(asha, "holds/"), {"title": title.pk})
    assert (r.status_code, "The customer already waits for this title." in r.content.decode()) == (409, True)
    r = desk.post(_patron_url(asha, "holds/"), {"title": 987654})
    assert (r.status_code, "No such title." in r.content.decode()) == (404, True)
    brians = Hold.objects.get(customer=brian)
    r = desk.post(_patron_url(asha, f"holds/{brians.pk}/cancel/"))  # another patron's hold
    assert (r.status_code, "We could not find that page" in r.content.decode()) == (404, True)
    assert _world() == before
    mine = Hold.objects.get(customer=asha)
    assert desk.post(_patron_url(asha, f"holds/{mine.pk}/cancel/")).status_code == 302
    assert Hold.objects.get(pk=mine.pk).closed_at is not None


def test_an_uncollected_hold_lapses_and_the_copy_goes_to_the_next_in_the_queue(
    make_title: Any, make_customer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from bazaar.rentals import tasks

    title = make_title(title="Dune", copies=1)
    first = make_customer(name="Tenar Arha", email="tenar@example.com")
    second = make_customer(name="Lebannen Arren", email="arren@example.com")
    rental = services.rental_rent(customer_id=make_customer().pk, title_id=title.pk)
    a = services.hold_place(customer_id=first.pk, title_id=title.pk)
    b = services.hold_place(customer_id=second.pk, title_id=title.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.rental_checkin(barcode=rental.copy.barcode)
    a.refresh_from_db()
    assert a.expires_at is not None
    assert services.holds_expire(now=a.expires_at) == 0  # not past it yet
    assert tasks.send_reminders()["holds_lapsed"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert services.holds_expire(now=a.expires_at + timedelta(seconds=1)) == 1
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.closed_at == a.expires_at + timedelta(seconds=1)
    assert (b.ready_at, b.copy_id, b.closed_at) == (a.closed_at, rental.copy_id, None)
    assert Copy.objects.get(pk=rental.copy_id).state == "on_hold"
    assert [m.to for m in mail.outbox] == [["tenar@example.com"], ["arren@example.com"]]
    # The last patron cancels: the copy goes back on the shelf.
    services.hold_cancel(hold_id=b.pk, customer_id=second.pk)
    assert Copy.objects.get(pk=rental.copy_id).state == "available"


def test_a_put_aside_copy_is_refused_to_staff_state_changes(make_title: Any, make_customer: Any) -> None:
    from bazaar.core.errors import Conflict

    title = make_title(copies=1)
    rental = services.rental_rent(customer_id=make_customer().pk, title_id=title.pk)
    services.hold_place(customer_id=make_customer().pk, title_id=title.pk)
    services.rental_checkin(barcode=rental.copy.barcode)
    with pytest.raises(Conflict) as refused:
        services.copy_set_state(copy_id=rental.copy_id, state="lost")
    assert refused.value.code == "copy_on_hold"
    assert Copy.objects.get(pk=rental.copy_id).state == "on_hold"


def test_borrowing_another_copy_passes_the_put_aside_one_on(make_title: Any, make_customer: Any) -> None:
    title = make_title(copies=2)
    asha, brian = make_customer(name="Asha Kamau"), make_customer(name="Brian Otieno")
    first = services.rental_rent(customer_id=make_customer().pk, title_id=title.pk)
    second = services.rental_rent(customer_id=make_customer().pk, title_id=title.pk)
    services.hold_place(customer_id=asha.pk, title_id=title.pk)
    waiting = services.hold_place(customer_id=brian.pk, title_id=title.pk)
    services.rental_checkin(barcode=first.copy.barcode)  # put aside for Asha
    services.rental_return(rental_id=second.pk)  # back on the shelf, not through the desk's check-in
    services.rental_rent(customer_id=asha.pk, barcode=second.copy.barcode)  # she takes the other copy
    waiting.refresh_from_db()
    assert (waiting.copy_id, waiting.closed_at) == (first.copy_id, None)
    assert Copy.objects.get(pk=first.copy_id).state == "on_hold"
