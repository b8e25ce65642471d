"""HTTP helpers shared by views: serving cached bytes with ETag/304, and the JSON error body."""

from __future__ import annotations

import ipaddress
import json
from functools import cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from bazaar.core.cache import Cached


def etag_matches(request: HttpRequest, etag: str) -> bool:
    header = request.META.get("HTTP_IF_NONE_MATCH")
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return etag in candidates


def bytes_response(
    request: HttpRequest,
    cached: Cached,
    *,
    content_type: str,
    cache_control: str = "public, max-age=0, must-revalidate",
) -> HttpResponse:
    """Return stored bytes as they are (no re-render, no re-serialize), or 304 when the client has them.

    ``max-age=0, must-revalidate`` is deliberate: browsers and edge caches may keep a copy but must ask again
    with the ETag, so a page is never shown stale after a write commits; the revalidation is a cheap 304.
    """
    if etag_matches(request, cached.etag):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(cached.body, content_type=content_type)
    response["ETag"] = cached.etag
    response["Cache-Control"] = cache_control
    response["X-Cache"] = "hit" if cached.hit else "miss"
    return response


def is_json_content_type(value: str) -> bool:
    """``application/json`` or a ``+json`` type, with any parameters (``; charset=utf-8``)."""
    media = value.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def error_body(code: str, message: str, details: Any = None) -> bytes:
    return json.dumps({"code": code, "message": message, "details": details}).encode()


def json_error(status: int, code: str, message: str, details: Any = None) -> HttpResponse:
    return HttpResponse(error_body(code, message, details), status=status, content_type="application/json")


@cache
def _proxy_networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in spec if item.strip())


def _trusted(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr.strip())
    except ValueError:
        return False
    return any(ip in net for net in _proxy_networks(tuple(settings.TRUSTED_PROXIES)))


def client_ip(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or — when that is a trusted proxy (``TRUSTED_PROXIES``, e.g. the
    nginx in front) — the right-most ``X-Forwarded-For`` hop that is not itself a trusted proxy.

    Only hops appended by trusted proxies are believed: a client can put anything at the left of the header.
    """
    remote = str(request.META.get("REMOTE_ADDR", ""))
    if not _trusted(remote):
        return remote
    hops = [h.strip() for h in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop):
            return hop
    return hops[0] if hops else remote
