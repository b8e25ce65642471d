"""Property-based API fuzzing with schemathesis, every check on: status codes, content types, response schemas
and headers as documented, 405 with ``Allow``, negative data refused — not only "no 5xx".

Run as each kind of caller (staff, a vendor, a trainer, a KV tenant), so the documented 401/403 answers and the
successful ones are both checked. ``positive_data_acceptance`` is left out: the generated "valid" data names
objects that do not exist (404), collides with stateful rules (a trainer id taken, stock), or carries text the
shared rules refuse (a control character, 422 ``invalid_text``, which JSON Schema cannot express); every other
check runs. Bounded (a few examples per operation) so it fits in CI; on PostgreSQL + Redis when
DATABASE_URL/REDIS_URL are set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    """JSON lines (the KV import body): one JSON document per line."""
    items = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


@pytest.fixture(scope="session")
def api_schema(django_db_blocker: Any) -> Any:
    """The schema, built from the app's own OpenAPI document when a test first needs it (issue 19): rendering
    the document through the app takes ~4-5 s, which an import-time build charged to every collection. The
    request runs outside any test's database access (Django's ``request_started`` checks the connection an
    earlier test left open), hence the unblock."""
    from bazaar.config.wsgi import application

    with django_db_blocker.unblock():
        return schemathesis.openapi.from_wsgi("/api/openapi.json", application)


schema = schemathesis.pytest.from_fixture("api_schema")

PRINCIPALS = ["staff", "vendor", "trainer", "tenant"]


def _credentials(who: str) -> str:
    """A bearer secret for ``who``, made through the services with a little data of their own."""
    from bazaar.accounts.models import User
    from bazaar.accounts.services import token_create

    if who == "tenant":
        from bazaar.kvstore.services import apikey_create, entry_set, tenant_create

        tenant = tenant_create(slug="fuzz")
        entry_set(tenant_id=tenant.pk, key="k", value={"a": 1})
        return apikey_create(tenant_id=tenant.pk, name="fuzz").secret
    if who == "vendor":
        from bazaar.storefront.services import product_create, vendor_signup

        shop = vendor_signup(
            username="fuzz-vendor",
            password="Tamarind-Kettle-Orbit-42",
            email="v@example.com",
            shop_name="Fuzz",
        )
        product_create(owner=shop.owner, name="Tea", mrp=Decimal("12"), price=Decimal("10"), stock=50)
        return token_create(user=shop.owner, name="fuzz").secret
    user = User.objects.create(username=f"fuzz-{who}", is_staff=who == "staff", is_superuser=who == "staff")
    if who == "trainer":
        import datetime as dt

        from bazaar.trading.services import trainer_create

        trainer_create(
            public_id="t1",
            first_name="Ash",
            last_name="K",
            date_of_birth=dt.date(1990, 1, 1),
            username=user.username,
        )
    return token_create(user=user, name="fuzz").secret


@pytest.fixture(params=PRINCIPALS)
def secret(db: Any, request: Any) -> Iterator[str]:
    """One principal's secret for every operation in turn (the lazy schema runs them as subtests of one test,
    in one database): it must still sign in at the end, or the operations after the one that revoked it were
    fuzzed anonymously."""
    from django.test import Client

    value = _credentials(request.param)
    yield value
    probe = "/api/kv/keys" if request.param == "tenant" else "/api/accounts/me"
    response = Client().get(probe, headers={"Authorization": f"Bearer {value}"})
    assert response.status_code == 200, f"{request.param}: the credential stopped working during the run"


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
# The lazy wrapper's signature is its own (``request`` only): the principal comes in as a used fixture.
@pytest.mark.usefixtures("secret")
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_is_as_documented(case: Any, secret: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {secret}", "Host": "testserver"},
        excluded_checks=[positive_data_acceptance],
    )
