"""Every example body in the OpenAPI document works as given: sent against the demo data (``bazaar demo`` on a
fresh database, ids as ``make run`` makes them) by the caller it is written for, it gets the documented success
status. Each call runs in a rolled-back savepoint, so every example meets the same demo data."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from bazaar.config.examples import EXAMPLES
from bazaar.core.tests.matrix_world import rolled_back


def _secrets() -> dict[str, str]:
    from bazaar.accounts.models import User
    from bazaar.accounts.services import token_create
    from bazaar.kvstore.models import Tenant
    from bazaar.kvstore.services import apikey_create

    users = {"staff": "admin", "vendor": "demo", "trainer": "ash"}
    out = {
        who: token_create(user=User.objects.get(username=name), name="examples").secret
        for who, name in users.items()
    }
    out["tenant"] = apikey_create(tenant_id=Tenant.objects.get(slug="demo").pk, name="examples").secret
    return out


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_every_documented_example_works_as_given(settings: Any, tmp_path: Any) -> None:
    settings.BAZAAR_VAR_DIR = str(tmp_path)
    call_command("demo", base_url="http://testserver", stdout=io.StringIO())
    secrets = _secrets()
    client = Client()
    schema = client.get("/api/openapi.json").json()
    problems: list[str] = []
    sent = 0
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            if "example" not in body:
                problems.append(f"{method.upper()} {path}: no example")
                continue
            example = EXAMPLES[(method, path)]
            url = path.format(
                **{p["name"]: p["example"] for p in op.get("parameters", []) if p["in"] == "path"}
            )
            headers: dict[str, Any] = (
                {"HTTP_AUTHORIZATION": f"Bearer {secrets[example.as_]}"} if example.as_ in secrets else {}
            )
            if "Idempotency-Key" in {p["name"] for p in op.get("parameters", [])}:
                headers["HTTP_IDEMPOTENCY_KEY"] = "example-1"
            documented = {int(s) for s in op["responses"] if s.startswith("2")}
            with rolled_back():
                r = client.generic(
                    method.upper(),
                    url,
                    json.dumps(body["example"]),
                    content_type="application/json",
                    **headers,
                )
            sent += 1
            if r.status_code not in documented:
                problems.append(
                    f"{method.upper()} {url} as {example.as_}: {r.status_code} {r.content[:200]!r}"
                )
    assert sent >= 30
    assert not problems, "\n".join(problems)
