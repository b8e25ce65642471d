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
import re
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Swagger
from ninja.openapi.docs import render_template

from bazaar.config.examples import EXAMPLES, Example
from bazaar.core.codes import CoreCode, declared_answers
from bazaar.core.schemas import OFFSET_WINDOW

#: A path parameter with a converter in a Ninja route (``{path:key}``, ``{int:key_id}``): OpenAPI names it ``{key}``.
_CONVERTER = re.compile(r"{(?:\w+:)?(\w+)}")

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
    410: "What was asked for is gone for good (e.g. compacted history); the details say where to resume.",
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
    ("/api/kv/watch", "wait"): (0, 60),  # invalid_wait
    ("/api/kv/watch", "since"): (0, 2**63 - 1),  # invalid_revision
    ("/api/kv/keys/{key}/history", "before"): (1, 2**63 - 1),  # invalid_revision
    ("/api/trading/trainers", "offset"): (0, OFFSET_WINDOW),  # offset_too_deep
    ("/api/trading/pokemon", "offset"): (0, OFFSET_WINDOW),  # offset_too_deep
}


def registries() -> dict[str, frozenset[str]]:
    """Each registry's codes: ``core`` (``bazaar.core.codes``) and every app's (``bazaar/<app>/codes.py``)."""
    from bazaar.core.codes import CoreCode

    out = {"core": frozenset(c.value for c in CoreCode)}
    for app in ("accounts", "storefront", "rentals", "trading", "kvstore"):
        module = __import__(f"bazaar.{app}.codes", fromlist=["Code"])
        registry: type[StrEnum] = module.Code
        out[app] = frozenset(c.value for c in registry)
    return out


def error_codes() -> dict[str, list[str]]:
    """Each app's error codes (its registry plus core's and accounts'): the codes its source may raise."""
    found = registries()
    # Every app builds on accounts (a vendor signs up through accounts' services, which may refuse the username).
    shared = found["core"] | found["accounts"]
    return {app: sorted(shared | codes) for app, codes in found.items() if app != "core"}


def operation_answers(api: Any) -> dict[tuple[str, str], dict[int, frozenset[str]]]:
    """The codes each operation declares with ``@answers`` beside its route, by (METHOD, OpenAPI path)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (mounting the URLs lists the routers' child routers in api._routers)
    out: dict[tuple[str, str], dict[int, frozenset[str]]] = {}
    for prefix, router in api._routers:
        for route, path_view in router.path_operations.items():
            path = _CONVERTER.sub(r"{\1}", re.sub("/+", "/", f"/api/{prefix}/{route}"))
            for op in path_view.operations:
                declared = declared_answers(op.view_func)
                if _unfit(route, f"/api/{prefix}/") is not None:  # the router's JSON 404
                    declared[404] = declared.get(404, frozenset()) | {CoreCode.NOT_FOUND}
                if inputs := input_codes(op.models):
                    declared[422] = declared.get(422, frozenset()) | inputs
                for method in op.methods:
                    out[(method.upper(), path)] = declared
    return out


#: Path values no converter of some kind takes: ``.+`` stops at a line break, ``[^/]+`` at a slash and cannot
#: be empty, ``[0-9]+`` takes digits only.
_UNFIT = ("\n", "\n/", "", "x")


def _unfit(route: str, prefix: str) -> str | None:
    """A URL (percent-encoded) made from a Ninja ``route`` with a path value the URL router refuses (one of
    ``_UNFIT`` in every parameter), or None when every such URL still reaches a view."""
    from urllib.parse import quote

    from django.urls import Resolver404, resolve

    if "{" not in route:
        return None
    base = re.sub("/+", "/", prefix).rstrip("/")
    for value in _UNFIT:
        url = base + re.sub(r"{[^}]+}", value, route)  # no backslash in a value: taken literally
        try:
            resolve(url)
        except Resolver404:
            return base + re.sub(r"{[^}]+}", quote(value, safe=""), route)
    return None


def unfit_paths() -> dict[tuple[str, str], str]:
    """Per operation (METHOD, OpenAPI path) with a path parameter: a URL its route misses (for the test)."""
    from django.urls import get_resolver

    from bazaar.config.api import api

    get_resolver().url_patterns  # noqa: B018  (mounting the URLs lists the routers' child routers in api._routers)
    out = {}
    for prefix, router in api._routers:
        for route, path_view in router.path_operations.items():
            url = _unfit(route, f"/api/{prefix}/")
            if url is not None:
                path = _CONVERTER.sub(r"{\1}", re.sub("/+", "/", f"/api/{prefix}/{route}"))
                for op in path_view.operations:
                    out.update({(method.upper(), path): url for method in op.methods})
    return out


def input_codes(models: list[Any]) -> frozenset[str]:
    """The 422 codes an operation's inputs (Ninja's parameter models: path, query, header, body) can answer,
    read from the very annotations that validate them: pydantic's own refusals (``validation_error``) and the
    shared rules of ``bazaar.core.schemas`` — ``invalid_text`` where a text is checked (``Line``/``Text``, any
    text of a ``CheckedIn``), ``out_of_range`` for an unbounded integer of a ``CheckedIn`` or a date of a
    ``StrictIn`` body, ``invalid_datetime`` for a datetime, ``invalid_type`` for a non-text scalar of a body;
    and ``validation_error`` for any query or form parameter, which may be given twice."""
    from ninja.params.models import FileModel, FormModel, QueryModel

    codes: set[str] = set()
    for model in models:
        if issubclass(model, QueryModel | FormModel | FileModel) and model.model_fields:
            codes.add(CoreCode.VALIDATION_ERROR)  # a parameter given twice (config/api.py JSONParser)
        for field in model.model_fields.values():
            codes |= _leaf_codes(field.annotation, list(field.metadata), checked=False, strict=False)
    return frozenset(codes)


def _leaf_codes(annotation: Any, metadata: list[Any], *, checked: bool, strict: bool) -> set[str]:
    import datetime as dt
    import decimal
    import types
    import typing

    from pydantic import AfterValidator, BaseModel

    from bazaar.core.schemas import INT64_MAX, CheckedIn, StrictIn, _cursor, _line, _multiline

    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        flat = [m for e in extra for m in (getattr(e, "metadata", None) or [e])]
        return _leaf_codes(inner, metadata + flat, checked=checked, strict=strict)
    if origin in (typing.Union, types.UnionType, list, tuple, set, dict, typing.Literal):
        if origin is typing.Literal:
            return {CoreCode.VALIDATION_ERROR}
        out: set[str] = {CoreCode.VALIDATION_ERROR} if origin in (list, tuple, set, dict) else set()
        for arg in typing.get_args(annotation):
            if arg is not type(None) and arg is not Ellipsis:
                out |= _leaf_codes(
                    arg,
                    metadata if origin not in (list, tuple, set, dict) else [],
                    checked=checked,
                    strict=strict,
                )
        return out
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        out = {CoreCode.VALIDATION_ERROR}
        sub_checked, sub_strict = issubclass(annotation, CheckedIn), issubclass(annotation, StrictIn)
        for field in annotation.model_fields.values():
            out |= _leaf_codes(field.annotation, list(field.metadata), checked=sub_checked, strict=sub_strict)
        return out
    validators = {m.func for m in metadata if isinstance(m, AfterValidator)}
    if _cursor in validators:  # the cursor's own rule answers before the shared text rule could
        return {CoreCode.INVALID_CURSOR}
    bounded = any(getattr(m, "le", None) is not None and m.le <= INT64_MAX for m in metadata)
    if annotation is str:
        text = checked or bool(validators & {_line, _multiline})
        limited = any(hasattr(m, "max_length") or hasattr(m, "pattern") for m in metadata)
        return ({CoreCode.INVALID_TEXT} if text else set()) | (
            {CoreCode.VALIDATION_ERROR} if strict or limited else set()
        )
    if annotation is typing.Any or annotation is object:  # a JSON value: its texts and integers are walked
        return {CoreCode.INVALID_TEXT, CoreCode.OUT_OF_RANGE} if checked else set()
    out = {CoreCode.VALIDATION_ERROR}
    if annotation is bool or annotation in (float, decimal.Decimal):
        if strict:
            out.add(CoreCode.INVALID_TYPE)
    elif annotation is int:
        if strict:
            out.add(CoreCode.INVALID_TYPE)
        if checked and not bounded:
            out.add(CoreCode.OUT_OF_RANGE)
    elif annotation in (dt.date, dt.datetime):
        if strict:
            out |= {CoreCode.INVALID_TYPE, CoreCode.OUT_OF_RANGE}
        if annotation is dt.datetime and checked:
            out.add(CoreCode.INVALID_DATETIME)
    return out


def _machinery(schema: dict[str, Any], method: str, op: dict[str, Any]) -> dict[int, set[str]]:
    """The codes core's machinery answers for an operation of this shape (its auth, path and body): the auth
    classes, the URL router, the JSON parser, the body limit, the database. The 422 codes of its inputs come from
    ``input_codes``; an app's own codes are declared beside the route (``@answers``)."""
    auth = {name for req in op.get("security", []) for name in req}
    out: dict[int, set[str]] = {503: {CoreCode.DATABASE_UNAVAILABLE}}
    if auth:
        out[401] = {CoreCode.UNAUTHORIZED}
        if any(name.startswith("Staff") for name in auth):
            out.setdefault(403, set()).add(CoreCode.STAFF_REQUIRED)
        if method in _UNSAFE and any(name.endswith("Session") for name in auth):
            out.setdefault(403, set()).add(CoreCode.CSRF_FAILED)
    if method in _UNSAFE:
        out[409] = {CoreCode.CONFLICT_RETRY}
    content = op.get("requestBody", {}).get("content", {})
    if content:
        out[413] = {CoreCode.PAYLOAD_TOO_LARGE}
    if "multipart/form-data" in content:
        out[400] = {CoreCode.MALFORMED_BODY}
    if "application/json" in content:
        out[400] = {CoreCode.MALFORMED_JSON}
        out[415] = {CoreCode.UNSUPPORTED_MEDIA_TYPE}
    return out


def _error_schema(codes: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "code": {"type": "string", "enum": codes},
            "message": {"type": "string"},
            "details": {},
        },
        "required": ["code", "message"],
    }


def declared_codes(schema: dict[str, Any]) -> dict[tuple[str, str], dict[int, frozenset[str]]]:
    """Read back from a finished document: the codes each operation declares, per status."""
    out: dict[tuple[str, str], dict[int, frozenset[str]]] = {}
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            out[(method.upper(), path)] = {
                int(status): frozenset(
                    answer["content"]["application/json"]["schema"]["properties"]["code"]["enum"]
                )
                for status, answer in op.get("responses", {}).items()
                if status.isdigit() and int(status) >= 400
            }
    return out


def finish(
    schema: dict[str, Any], answers: dict[tuple[str, str], dict[int, frozenset[str]]] | None = None
) -> dict[str, Any]:
    """The document Ninja built, made true (see the module docstring). ``answers`` are the codes each operation
    declares beside its route (``operation_answers``). Returns a new dict."""
    schema = copy.deepcopy(schema)
    answers = answers or {}
    known = {code for codes in registries().values() for code in codes}
    schema.setdefault("components", {})["securitySchemes"] = SCHEMES
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            _add_example(op, EXAMPLES.get((method, path)))
            codes = _machinery(schema, method, op)
            for status, declared in answers.get((method.upper(), path), {}).items():
                unknown = declared - known
                assert not unknown, f"{method.upper()} {path} declares codes in no registry: {unknown}"
                codes.setdefault(status, set()).update(declared)
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
            # A status Ninja was told of (e.g. a router's shared ERRORS) that nothing answers is dropped.
            for told in [s for s in responses if s.isdigit() and int(s) >= 400 and int(s) not in codes]:
                del responses[told]
            for status in sorted(codes):
                responses[str(status)] = {
                    "description": _MESSAGES.get(status, "Error"),
                    "content": {
                        "application/json": {"schema": _error_schema(sorted(map(str, codes[status])))}
                    },
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
