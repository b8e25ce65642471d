"""The WSGI fast path for the desk's rent and return: the same service calls and the same answers as the Ninja
views; anything it does not handle (session auth, a backdated return, other body shapes) goes to Django."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.core.wsgi import get_wsgi_application

from bazaar.core.fastpath import FastPath
from bazaar.core.testing import fast_path_only, wsgi_call
from bazaar.rentals import services
from bazaar.rentals.models import Copy, CopyState, CustomerStatus, Rental
from bazaar.rentals.schemas import RentalOut, rental_out

pytestmark = pytest.mark.django_db(transaction=True)


def _fast(path: str, token: str, body: str = "") -> tuple[str, dict[str, str], bytes] | None:
    return fast_path_only(path, method="POST", body=body, HTTP_AUTHORIZATION=f"Bearer {token}")


def _rent_body(customer_id: int, title_id: int) -> str:
    return json.dumps({"customer_id": customer_id, "title_id": title_id})


def test_rent_and_return_are_answered_before_django_like_django(
    api_client: Any, staff_token: str, make_title: Any, make_customer: Any
) -> None:
    title, customer = make_title(copies=1), make_customer()
    rented = _fast("/api/rentals/rentals", staff_token, _rent_body(customer.pk, title.pk))
    assert rented is not None, "a plain rent must not reach Django"
    assert rented[0] == "201 Created"
    rental_id = json.loads(rented[2])["id"]
    shown = api_client.call("GET", f"/api/rentals/rentals/{rental_id}", token=staff_token)
    # The same RentalOut as Django renders (compared parsed: PostgreSQL's jsonb orders the keys of `terms`).
    assert json.loads(rented[2]) == shown.json()
    assert rented[1]["Content-Type"] == shown["Content-Type"]
    assert Copy.objects.get(pk=json.loads(rented[2])["copy_id"]).state == CopyState.RENTED

    returned = _fast(f"/api/rentals/rentals/{rental_id}/return", staff_token)
    assert returned is not None
    assert returned[0] == "200 OK"
    closed = api_client.call("GET", f"/api/rentals/rentals/{rental_id}", token=staff_token)
    assert json.loads(returned[2]) == closed.json()
    assert json.loads(returned[2])["charge"] == "2.00"

    again = _fast(f"/api/rentals/rentals/{rental_id}/return", staff_token)
    slow = api_client.call("POST", f"/api/rentals/rentals/{rental_id}/return", token=staff_token)
    assert again is not None
    assert int(again[0][:3]) == slow.status_code == 409
    assert json.loads(again[2]) == slow.json()
    assert slow.json()["code"] == "already_returned"
    stored = Rental.objects.get(pk=rental_id)  # charged once: the second return changed nothing
    assert stored.charge == Decimal("2.00")
    assert stored.returned_at is not None
    assert (
        stored.returned_at.isoformat().replace("+00:00", "Z")[:23]
        == json.loads(returned[2])["returned_at"][:23]
    )
    assert Copy.objects.get(pk=stored.copy_id).state == CopyState.AVAILABLE


@pytest.mark.parametrize(
    "case",
    ["no_copy", "blocked", "no_customer", "no_title", "over_limit", "owes_too_much", "limit_and_no_copy"],
)
def test_rent_errors_match_djangos_and_write_nothing(
    api_client: Any, staff_token: str, make_title: Any, make_customer: Any, case: str, settings: Any
) -> None:
    title = make_title(copies=0 if case in ("no_copy", "limit_and_no_copy") else 3)
    customer = make_customer(status=CustomerStatus.BLOCKED if case == "blocked" else CustomerStatus.ACTIVE)
    if case in ("over_limit", "limit_and_no_copy"):
        # The limit is checked before availability: with no copy free either, the answer is still the limit.
        settings.RENTALS_MAX_OPEN_RENTALS = 1
        services.rental_rent(customer_id=customer.pk, title_id=make_title(copies=1).pk)
    if case == "owes_too_much":
        settings.RENTALS_MAX_BALANCE = "1.00"
        other = services.rental_rent(customer_id=customer.pk, title_id=make_title(copies=1).pk)
        services.rental_return(rental_id=other.pk)  # 2.00 owed
    before = Rental.objects.count()
    copies = list(Copy.objects.order_by("pk").values_list("pk", "state"))
    customer_id = customer.pk + 1000 if case == "no_customer" else customer.pk
    title_id = title.pk + 1000 if case == "no_title" else title.pk
    body = _rent_body(customer_id, title_id)
    fast = _fast("/api/rentals/rentals", staff_token, body)
    slow = api_client.call("POST", "/api/rentals/rentals", body, token=staff_token)
    assert fast is not None
    assert int(fast[0][:3]) == slow.status_code
    assert slow.status_code in (404, 409)
    assert json.loads(fast[2]) == slow.json()
    expected_code = {
        "no_copy": "no_copy_available",
        "blocked": "customer_blocked",
        "no_customer": "customer_not_found",
        "no_title": "title_not_found",
        "over_limit": "rental_limit_reached",
        "limit_and_no_copy": "rental_limit_reached",
        "owes_too_much": "balance_too_high",
    }[case]
    assert slow.json()["code"] == expected_code
    assert Rental.objects.count() == before
    assert list(Copy.objects.order_by("pk").values_list("pk", "state")) == copies


@pytest.mark.parametrize("closed", [False, True])
def test_rental_out_is_the_schemas_dump(make_title: Any, make_customer: Any, closed: bool) -> None:
    rental = services.rental_rent(customer_id=make_customer().pk, title_id=make_title(kind="novel").pk)
    if closed:
        rental = services.rental_return(rental_id=rental.pk)
    for shown in (rental, Rental.objects.select_related("customer", "copy", "title").get(pk=rental.pk)):
        dumped = rental_out(shown)
        expected = RentalOut.model_validate(shown).model_dump()
        assert dumped == expected
        assert {k: type(v) for k, v in dumped.items()} == {k: type(v) for k, v in expected.items()}


@pytest.mark.parametrize(
    "variant", ["due_at", "string_id", "copy_id", "backdated_return", "session", "not_staff", "bad_token"]
)
def test_anything_unusual_goes_to_django(
    client: Any,
    make_user: Any,
    token_for: Any,
    staff_token: str,
    make_title: Any,
    make_customer: Any,
    variant: str,
) -> None:
    title, customer = make_title(copies=2), make_customer()
    token = staff_token
    path, body = "/api/rentals/rentals", _rent_body(customer.pk, title.pk)
    if variant == "due_at":
        body = json.dumps(
            {"customer_id": customer.pk, "title_id": title.pk, "due_at": "2099-01-01T00:00:00Z"}
        )
    elif variant == "string_id":
        body = json.dumps({"customer_id": str(customer.pk), "title_id": title.pk})
    elif variant == "copy_id":
        body = json.dumps(
            {
                "customer_id": customer.pk,
                "copy_id": Copy.objects.filter(title=title).values_list("pk", flat=True)[0],
            }
        )
    elif variant == "backdated_return":
        rental = Rental.objects.get(pk=json.loads(_fast(path, token, body)[2])["id"])  # type: ignore[index]
        path, body = (
            f"/api/rentals/rentals/{rental.pk}/return",
            json.dumps({"returned_at": rental.rented_at.isoformat()}),
        )
    elif variant == "not_staff":
        token = token_for(make_user("walk-in"))
    elif variant == "bad_token":
        token = "bzr_not-a-token"
    extra: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if variant == "session":
        extra = {}
    assert fast_path_only(path, method="POST", body=body, **extra) is None
    status, _headers, out = wsgi_call(
        FastPath(get_wsgi_application()), path, method="POST", body=body, **extra
    )
    expected = {"due_at": 201, "copy_id": 201, "backdated_return": 200}
    if variant in expected:
        assert int(status[:3]) == expected[variant], out  # Django handled it, with the body as sent
    else:  # Django refused it: a string id is not an integer (strict JSON), no credentials → 401 (checked before
        # the session's CSRF), a valid non-staff token → 403 naming the right, a bad token → 401 about the token
        refused = {
            "string_id": (422, "invalid_type"),
            "session": (401, "unauthorized"),
            "not_staff": (403, "staff_required"),
            "bad_token": (401, "unauthorized"),
        }[variant]
        assert (int(status[:3]), json.loads(out)["code"]) == refused, out
        assert Rental.objects.count() == 0
