"""The back office renders every rentals model for staff."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from bazaar.rentals import services

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model",
    ["title", "copy", "customer", "priceplan", "rental", "payment", "hold", "remindersent", "exportjob"],
)
def test_admin_changelists(
    client: Client, make_user: Any, make_title: Any, make_customer: Any, model: str
) -> None:
    title = make_title(copies=1)
    services.rental_rent(customer_id=make_customer().pk, title_id=title.pk)
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    assert client.get(f"/admin/rentals/{model}/").status_code == 200
    assert client.get(f"/admin/rentals/title/{title.pk}/change/").status_code == 200
