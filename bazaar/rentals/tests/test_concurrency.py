"""Real threads against PostgreSQL: the last copy goes to exactly one of 32 clerks; a rental is charged once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from bazaar.core.errors import DomainError
from bazaar.rentals import services
from bazaar.rentals.models import Copy, CopyState, Rental

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
CLERKS = 32


def _renter(customer_id: int, **kwargs: Any) -> Callable[[], Any]:
    return lambda: services.rental_rent(customer_id=customer_id, **kwargs)


def _race(work: list[Callable[[], Any]]) -> Counter[str]:
    barrier = threading.Barrier(len(work))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(fn: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            fn()
            result = "ok"
        except DomainError as exc:
            result = exc.code
        except Exception as exc:  # an unexpected error must fail the test, not vanish in a thread
            result = f"error:{type(exc).__name__}:{exc}"
        finally:
            connection.close()
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=run, args=(fn,)) for fn in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def test_32_clerks_rent_the_last_copy_exactly_one_wins(make_title: Any, make_customer: Any) -> None:
    title = make_title(copies=1)
    customers = [make_customer() for _ in range(CLERKS)]
    outcomes = _race([_renter(c.pk, title_id=title.pk) for c in customers])
    assert outcomes == Counter({"ok": 1, "no_copy_available": CLERKS - 1})
    assert Rental.objects.filter(returned_at__isnull=True).count() == 1
    assert Copy.objects.get().state == CopyState.RENTED


def test_32_clerks_rent_one_specific_copy(make_title: Any, make_customer: Any) -> None:
    copy = make_title(copies=1).copies.get()
    customers = [make_customer() for _ in range(CLERKS)]
    outcomes = _race([_renter(c.pk, copy_id=copy.pk) for c in customers])
    assert outcomes == Counter({"ok": 1, "copy_not_available": CLERKS - 1})
    assert Rental.objects.count() == 1


def test_many_copies_no_double_rental(make_title: Any, make_customer: Any) -> None:
    title = make_title(copies=10)
    customers = [make_customer() for _ in range(CLERKS)]
    outcomes = _race([_renter(c.pk, title_id=title.pk) for c in customers])
    assert outcomes == Counter({"ok": 10, "no_copy_available": CLERKS - 10})
    assert Rental.objects.values("copy_id").distinct().count() == 10


def test_one_customer_limit_holds_under_concurrency(
    make_title: Any, make_customer: Any, settings: Any
) -> None:
    settings.RENTALS_MAX_OPEN_RENTALS = 3
    title, customer = make_title(copies=CLERKS), make_customer()
    outcomes = _race([lambda: services.rental_rent(customer_id=customer.pk, title_id=title.pk)] * 16)
    assert outcomes == Counter({"ok": 3, "rental_limit_reached": 13})


def test_32_clerks_return_the_same_rental_charged_once(make_title: Any, make_customer: Any) -> None:
    rental = services.rental_rent(customer_id=make_customer().pk, title_id=make_title().pk)
    outcomes = _race([lambda: services.rental_return(rental_id=rental.pk)] * CLERKS)
    assert outcomes == Counter({"ok": 1, "already_returned": CLERKS - 1})
    rental.refresh_from_db()
    assert str(rental.charge) == "2.00"
    assert Copy.objects.get().state == CopyState.AVAILABLE
