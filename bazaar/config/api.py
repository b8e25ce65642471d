"""The one NinjaAPI, mounted at /api/. Every error leaves here as {"code", "message", "details"}."""

from __future__ import annotations

import json
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.datastructures import MultiValueDict
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError
from ninja.parser import Parser

from bazaar.accounts.api import router as accounts_router
from bazaar.config.openapi import SessionSwagger, finish, operation_answers
from bazaar.core.errors import WWW_AUTHENTICATE, DomainError, UnsupportedMediaType
from bazaar.core.http import is_json_content_type
from bazaar.core.middleware import CONFLICT_MESSAGE, is_conflict
from bazaar.core.schemas import ERROR_CODES
from bazaar.kvstore.api import router as kvstore_router
from bazaar.rentals.api import router as rentals_router
from bazaar.storefront.api import router as storefront_router
from bazaar.trading.api import router as trading_router


class JSONParser(Parser):
    """A JSON body must say it is JSON: ``text/plain``, XML, a form or multipart is 415, not parsed as JSON.
    A query (or form) parameter that takes one value and is given more than once (``?state=open&state=x``) is
    422 ``validation_error``: Ninja would silently keep the last one, answering for a request the client did not
    make."""

    def parse_body(self, request: HttpRequest) -> Any:
        if not is_json_content_type(request.META.get("CONTENT_TYPE", "")):
            raise UnsupportedMediaType()
        return super().parse_body(request)

    def parse_querydict(
        self, data: MultiValueDict[str, Any], list_fields: list[str], request: HttpRequest
    ) -> Any:
        where = "query" if data is request.GET else "form" if data is request.POST else "file"
        repeated = [key for key, values in data.lists() if key not in list_fields and len(values) > 1]
        if repeated:
            raise ValidationError(
                [
                    {
                        "loc": (where, key),
                        "msg": "Given more than once; this parameter takes one value.",
                        "type": "repeated",
                    }
                    for key in repeated
                ]
            )
        return super().parse_querydict(data, list_fields, request)


api = NinjaAPI(
    title="Bazaar API",
    version="1.0.0",
    description=(
        "One API for the four Bazaar businesses. Authenticate with `Authorization: Bearer <token>` "
        "(create tokens at /accounts/tokens/) or a browser session (CSRF-protected). Errors always have the "
        'shape `{"code", "message", "details"}`. Lists take `limit`/`offset`.'
    ),
    docs=SessionSwagger(settings={"persistAuthorization": True}),
    urls_namespace="api",
    parser=JSONParser(),
)


def _error(request: HttpRequest, status: int, code: str, message: str, details: Any = None) -> HttpResponse:
    return api.create_response(request, {"code": code, "message": message, "details": details}, status=status)


@api.exception_handler(DomainError)
def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    response = _error(request, exc.status, exc.code, exc.message, exc.details)
    if exc.status == 401:
        response["WWW-Authenticate"] = WWW_AUTHENTICATE
    if exc.status == 429:
        response["Retry-After"] = "60"
    return response


def _clean_loc(loc: Any) -> list[Any]:
    return (
        [p for p in loc if p not in ("body", "payload", "query", "path")]
        if isinstance(loc, list | tuple)
        else loc
    )


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    details = [
        {
            "loc": list(e.get("loc", [])),
            "field": ".".join(str(x) for x in _clean_loc(e.get("loc", []))),
            "msg": e.get("msg"),
            "type": e.get("type"),
        }
        for e in exc.errors
    ]
    malformed = any(e.get("type") == "json_invalid" for e in exc.errors)
    if malformed:
        return _error(request, 400, "malformed_json", "The request body is not valid JSON.", details)
    special = [e for e in exc.errors if e.get("type") in ERROR_CODES]
    if special:  # the shared input rules (core.schemas) answer with their own stable code
        return _error(request, 422, ERROR_CODES[special[0]["type"]], str(special[0].get("msg")), details)
    return _error(request, 422, "validation_error", "The request is not valid.", details)


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _error(
        request, 401, "unauthorized", "Authentication credentials were not provided or are invalid."
    )
    response["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


@api.exception_handler(AuthorizationError)
def on_authz_error(request: HttpRequest, exc: AuthorizationError) -> HttpResponse:
    return _error(request, 403, "forbidden", "You are not allowed to do this.")


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, DomainError):  # raised by JSONParser, wrapped by Ninja as "cannot parse"
        return on_domain_error(request, exc.__cause__)
    if exc.status_code == 400 and "parse request body" in str(exc):
        return _error(request, 400, "malformed_json", "The request body is not valid JSON.")
    code = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 429: "rate_limited"}
    return _error(request, exc.status_code, code.get(exc.status_code, "error"), str(exc))


@api.exception_handler(Http404)
def on_404(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", "Not found.")


@api.exception_handler(MultiPartParserError)
def on_bad_multipart(request: HttpRequest, exc: MultiPartParserError) -> HttpResponse:
    return _error(request, 400, "malformed_body", "The multipart request body cannot be parsed.", str(exc))


@api.exception_handler(OperationalError)
def on_db_down(request: HttpRequest, exc: OperationalError) -> HttpResponse:
    if is_conflict(exc):
        return _error(request, 409, "conflict_retry", CONFLICT_MESSAGE)
    response = _error(request, 503, "database_unavailable", "The database is unavailable; try again shortly.")
    response["Retry-After"] = "5"
    return response


api.add_exception_handler(InterfaceError, on_db_down)  # type: ignore[arg-type]

api.add_router("/accounts/", accounts_router)
api.add_router("/storefront/", storefront_router)
api.add_router("/rentals/", rentals_router)
api.add_router("/trading/", trading_router)
api.add_router("/kv/", kvstore_router)


_openapi_bytes: bytes | None = None
_openapi_document: dict[str, Any] | None = None


def openapi_document() -> dict[str, Any]:
    """The finished OpenAPI document (``bazaar.config.openapi.finish``), built once per process."""
    global _openapi_document
    if _openapi_document is None:
        schema = dict(api.get_openapi_schema(path_prefix="/api/"))
        _openapi_document = finish(schema, operation_answers(api))
    return _openapi_document


def openapi_json(request: HttpRequest) -> HttpResponse:
    """The OpenAPI document, built once per process (Ninja rebuilds it per request: ~150 ms of CPU each)."""
    global _openapi_bytes
    if request.method not in ("GET", "HEAD"):
        response = _error(request, 405, "method_not_allowed", f"{request.method} is not allowed here.")
        response["Allow"] = "GET, HEAD"
        return response
    if _openapi_bytes is None:
        from ninja.responses import NinjaJSONEncoder

        _openapi_bytes = json.dumps(openapi_document(), cls=NinjaJSONEncoder).encode()
    response = HttpResponse(_openapi_bytes, content_type="application/json")
    response["Cache-Control"] = "public, max-age=300"
    return response
