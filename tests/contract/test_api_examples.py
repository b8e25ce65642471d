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
from tests.contract.matrix_world import rolled_back


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


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_swagger_try_it_out_works_with_a_signed_in_session(live_server: Any, make_user: Any) -> None:
    """In Chromium: sign in through the login form, open /api/docs, "Try it out" on ``POST /api/accounts/tokens``
    with its example body, "Execute": 201 (Swagger UI sent the session's CSRF token; without it, 403 csrf_failed)."""
    import os
    import re

    from bazaar.accounts.models import ApiToken
    from bazaar.core.testing import chromium_browser

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright runs an event loop in this thread
    user = make_user("swagger-user", password="Tamarind-Kettle-Orbit-42")
    with chromium_browser() as browser:
        ctx = browser.new_context(base_url=live_server.url)
        form = ctx.request.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text())
        assert token
        ctx.request.post(
            "/accounts/login/",
            form={
                "csrfmiddlewaretoken": token.group(1),
                "username": user.username,
                "password": "Tamarind-Kettle-Orbit-42",
            },
            headers={"Referer": f"{live_server.url}/accounts/login/"},
        )
        page = ctx.new_page()
        page.set_default_timeout(30_000)  # a loaded CI machine
        page.goto("/api/docs")
        op = page.locator(".opblock-post").filter(has=page.locator('[data-path="/api/accounts/tokens"]'))
        op.locator(".opblock-summary").first.click()
        op.locator(".try-out__btn").click()
        assert '"laptop"' in op.locator("textarea.body-param__text").input_value()  # the documented example
        op.locator(".execute").click()
        status = op.locator(".live-responses-table tr.response .response-col_status").first
        status.wait_for()
        assert status.inner_text().strip().startswith("201"), status.inner_text()
        ctx.close()
    assert ApiToken.objects.filter(user=user, name="laptop").count() == 1
