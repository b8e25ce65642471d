"""The OpenAPI document made honest: what Ninja derives from the routes, finished with what it cannot know.

``finish`` runs once per process on the document Ninja builds (``bazaar.config.api.openapi_json``):

* **One security scheme per kind of credential** — a user's token, the browser session (with its CSRF header),
  a KV tenant's key — instead of one per auth class (staff variants included), each described.
* **Every status an operation can answer** is declared with the error schema: 401/403 where credentials are
  checked, 404 where a path names an object, 400/413/415/422 for a JSON body, 422 for parameters, 409 for a
  write that may collide (``conflict_retry``), 503 when the database is down. The ``code`` of each error
  response is an enum of the codes the operation's app can answer (``ERROR_CODES``, from the apps' registries).
* **Server rules the signatures do not carry**: ``limit`` bounds, the required ``Idempotency-Key`` header.
* **Examples that work as given** (``bazaar.config.examples``): each JSON body's example and its path parameters,
  written against the demo data; a test sends every one.
"""

from __future__ import annotations

import copy
import json
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Swagger
from ninja.openapi.docs import render_template

from bazaar.config.examples import EXAMPLES, Example

SCHEMES: dict[str, dict[str, Any]] = {
    "userToken": {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "A user's API token: create one at /accounts/tokens/ or with POST /api/accounts/tokens/login. "
            "Staff endpoints need a staff user's token (a valid non-staff token is 403 `staff_required`)."
        ),
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": settings.SESSION_COOKIE_NAME,
        "description": (
            "The browser session (sign in at /accounts/login/). Unsafe methods also need the CSRF token in the "
            "`X-CSRFToken` header (403 `csrf_failed` without it); this page sends it for you."
        ),
    },
    "tenantKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A KV tenant's API key (`kv_…`, made by staff under /api/kv/tenants/{slug}/keys).",
    },
}

#: Ninja names a scheme after the auth class; each class is one of the kinds above.
_KIND = {
    "BearerToken": "userToken",
    "StaffBearerToken": "userToken",
    "Session": "session",
    "StaffSession": "session",
    "TenantKey": "tenantKey",
}

_MESSAGES = {
    400: "Malformed request (e.g. the body is not valid JSON).",
    401: "No credentials, or credentials that are not valid here (see WWW-Authenticate).",
    403: "Valid credentials without the right (the code names it, e.g. `staff_required`, `csrf_failed`).",
    404: "No such object (or not yours: the same answer).",
    409: "The request conflicts with the current state, or collided with a concurrent change.",
    413: "The request body is larger than the limit.",
    415: "The body is not JSON (send Content-Type: application/json).",
    422: "The input breaks a rule (the code and details say which).",
    429: "Too many requests; retry after Retry-After seconds.",
    503: "The database is unavailable; retry after Retry-After seconds.",
}

_UNSAFE = {"post", "put", "patch", "delete"}


def _limit_max(path: str) -> int:
    if path.startswith("/api/kv/"):
        from bazaar.kvstore import conf

        return conf.max_list_limit()
    return int(settings.API_MAX_LIMIT)


#: Bounds the server checks itself (a stable code, not pydantic's) for parameters typed only as integers.
PARAM_BOUNDS: dict[tuple[str, str], tuple[int, int]] = {
    ("/api/rentals/price-plans/{kind}/quote", "days"): (1, 3650),
    ("/api/rentals/price-plans/{kind}/quote", "late_days"): (0, 3650),
}


def _app(path: str) -> str:
    return path.split("/")[2]


def error_codes() -> dict[str, list[str]]:
    """Each app's error codes (its registry plus core's), for the per-app error schemas."""
    from bazaar.accounts.codes import Code as AccountsCode
    from bazaar.core.codes import CoreCode

    # Every app builds on accounts (a vendor signs up through accounts' services, which may refuse the username).
    shared = {c.value for c in CoreCode} | {c.value for c in AccountsCode}
    out: dict[str, list[str]] = {}
    for app in ("accounts", "storefront", "rentals", "trading", "kvstore"):
        module = __import__(f"bazaar.{app}.codes", fromlist=["Code"])
        registry: type[StrEnum] = module.Code
        out[app] = sorted(shared | {c.value for c in registry})
    return out


def _error_schema(schema: dict[str, Any], app: str, codes: list[str]) -> str:
    name = f"Error_{app}"
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    if name not in schemas:
        schemas[name] = {
            "title": name,
            "type": "object",
            "description": f"An error of the {app} API: a stable `code`, a message for people, details.",
            "properties": {
                "code": {"type": "string", "enum": codes},
                "message": {"type": "string"},
                "details": {},
            },
            "required": ["code", "message"],
        }
    return f"#/components/schemas/{name}"


def _statuses(method: str, op: dict[str, Any]) -> set[int]:
    params = op.get("parameters", [])
    statuses = {503}
    if op.get("security"):
        statuses |= {401, 403}
    if any(p.get("in") == "path" for p in params):
        statuses.add(404)
    if params:
        statuses.add(422)
    body = op.get("requestBody", {}).get("content", {})
    if body:  # a body may also name objects (ids, keys, barcodes) that do not exist: 404
        statuses |= {400, 404, 413, 422}
        if "application/json" in body:
            statuses.add(415)
    if method in _UNSAFE:
        statuses.add(409)
    return statuses


def finish(schema: dict[str, Any]) -> dict[str, Any]:
    """The document Ninja built, made true (see the module docstring). Returns a new dict."""
    schema = copy.deepcopy(schema)
    codes = error_codes()
    app_of = {"kv": "kvstore"}
    schema.setdefault("components", {})["securitySchemes"] = SCHEMES
    for path, ops in schema.get("paths", {}).items():
        app = app_of.get(_app(path), _app(path))
        ref = _error_schema(schema, app, codes[app])
        for method, op in ops.items():
            _add_example(op, EXAMPLES.get((method, path)))
            if "security" in op:
                kinds = list(dict.fromkeys(_KIND.get(k, k) for req in op["security"] for k in req))
                op["security"] = [{k: []} for k in kinds]
            for param in op.get("parameters", []):
                name = param.get("name")
                if name == "Idempotency-Key":
                    param["required"] = True
                    param["schema"] = {**param.get("schema", {}), "minLength": 1, "maxLength": 200}
                if param.get("in") == "query" and name == "limit":
                    param["schema"] = _bounded(param.get("schema", {}), 1, _limit_max(path))
                bounds = PARAM_BOUNDS.get((path, name))
                if bounds:
                    param["schema"] = _bounded(param.get("schema", {}), *bounds)
            responses = op["responses"] = {str(k): v for k, v in op.get("responses", {}).items()}
            for status in sorted(
                _statuses(method, op) | {int(s) for s in responses if s.isdigit() and int(s) >= 400}
            ):
                responses[str(status)] = {
                    "description": responses.get(str(status), {}).get("description")
                    or _MESSAGES.get(status, "Error"),
                    "content": {"application/json": {"schema": {"$ref": ref}}},
                }
                if status == 401:
                    responses["401"]["headers"] = {
                        "WWW-Authenticate": {
                            "schema": {"type": "string"},
                            "description": "The schemes accepted.",
                        }
                    }
    return schema


def _add_example(op: dict[str, Any], example: Example | None) -> None:
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    if example is None or body is None:
        return
    body["example"] = example.body
    for param in op.get("parameters", []):
        if param.get("in") == "path" and param["name"] in example.path:
            param["example"] = example.path[param["name"]]
    if param_names := {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}:
        assert param_names == set(example.path), (
            f"example path parameters {set(example.path)} != {param_names}"
        )


def _bounded(schema: dict[str, Any], low: int, high: int) -> dict[str, Any]:
    """An integer schema (possibly ``anyOf`` with null) with ``minimum``/``maximum`` set."""
    if "anyOf" in schema:
        return {
            **schema,
            "anyOf": [_bounded(s, low, high) if s.get("type") == "integer" else s for s in schema["anyOf"]],
        }
    return {
        **schema,
        "minimum": max(low, schema.get("minimum", low)),
        "maximum": min(high, schema.get("maximum", high)),
    }


class SessionSwagger(Swagger):
    """Swagger UI whose Try-it-out works with a signed-in session: it sends the CSRF token as ``X-CSRFToken``
    (Ninja adds it only when the API's *global* auth uses CSRF; ours is per operation)."""

    def render_page(self, request: HttpRequest, api: Any, **kwargs: Any) -> HttpResponse:
        self.settings["url"] = self.get_openapi_url(api, kwargs)
        context = {
            "swagger_settings": json.dumps(self.settings, indent=1),
            "api": api,
            "add_csrf": True,
        }
        return render_template(request, self.template, self.template_cdn, context)
