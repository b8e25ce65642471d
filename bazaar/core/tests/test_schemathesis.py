"""Property-based API fuzzing with schemathesis: every operation, valid staff auth, never a 5xx.

Bounded (a few examples per operation) so it fits in CI; the full run is `schemathesis run .../openapi.json`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from bazaar.config.wsgi import application


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    """JSON lines (the KV import body): one JSON document per line."""
    items = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)


@pytest.fixture
def staff_token(db: Any) -> str:
    from bazaar.accounts.models import User
    from bazaar.accounts.services import token_create

    user = User.objects.create(username="fuzz-staff", is_staff=True, is_superuser=True)
    return token_create(user=user, name="fuzz").secret


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_answers_5xx(case: Any, staff_token: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {staff_token}", "Host": "testserver"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}"
