"""``bazaar rentals rent|return|overdue|export``."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from bazaar.rentals.models import Rental

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("rentals", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_rent_return_overdue_export(
    make_title: Any, make_customer: Any, settings: Any, tmp_path: Any
) -> None:
    settings.MEDIA_ROOT = tmp_path
    title, customer = make_title(kind="fiction", copies=1), make_customer()
    out, _ = run("rent", "--customer", str(customer.pk), "--title", str(title.pk))
    rental = Rental.objects.get()
    assert f"rental {rental.pk}:" in out
    with pytest.raises(CommandError, match="no_copy_available"):
        run("rent", "--customer", str(customer.pk), "--title", str(title.pk))
    out, _ = run("overdue")
    assert "0 overdue rental(s)." in out
    target = tmp_path / "out.csv"
    _, err = run("export", "--out", str(target))
    assert "exported 1 active rental(s)" in err
    assert len(target.read_text().splitlines()) == 2
    out, _ = run("return", "--copy", rental.copy.barcode)
    assert "total" in out
    assert "3.00" in out
    with pytest.raises(CommandError, match="already_returned"):
        run("return", str(rental.pk))
