"""The WSGI fast path for ``PUT /api/kv/keys/<key>``: the same service call as the API view, without the framework.

A KV write is one SQL statement and one cache invalidation, about 0.4 ms of work; Django's request cycle and
Ninja's parsing and validation around it cost about three times that (profiled: 1.3 ms CPU per PUT through the
view). ``bazaar.core.fastpath.register_write`` runs this handler inside ``fastpath.database``, so database
connections are kept up as for a view.

It handles only the plain case and answers exactly what ``bazaar.kvstore.api.put_key`` answers: a bearer API key
already known (``apikey_authenticate``), no query string, a simple key, a JSON object body with ``value`` and
optionally integer ``ttl`` / ``if_version`` and nothing else. Service errors (409 conflict, 413 value too large,
422 invalid key or TTL) are rendered in the API's error shape. Anything else — an unknown or revoked key, another
body shape, a database error — returns None and Django handles the request from the start (nothing was written).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import DatabaseError

from bazaar.core.errors import DomainError
from bazaar.core.fastpath import json_answer
from bazaar.kvstore import services
from bazaar.kvstore.cache import CONTENT_TYPE, etag, plain_request
from bazaar.kvstore.schemas import SetIn, write_body

Answer = tuple[str, list[tuple[str, str]], bytes]
_FIELDS = frozenset(SetIn.model_fields)  # the fields the API accepts, from its schema
#: JSON escapes of C0 controls, DEL and surrogates (raw ones are not valid JSON): never the plain case.
_SUSPECT_TEXT = re.compile(rb"\\(?:[bf]|u(?:00[01][0-9a-fA-F]|007[fF]|[dD][89a-fA-F][0-9a-fA-F]{2}))")


def _int_or_none(v: Any) -> bool:
    return v is None or type(v) is int


def fast_put(match: re.Match[str], environ: dict[str, Any], body: bytes) -> Answer | None:
    """The fast-path handler for ``PUT /api/kv/keys/<key>`` (registered in KvstoreConfig.ready())."""
    plain = plain_request(match, environ)
    if plain is None:
        return None
    secret, key = plain
    if _SUSPECT_TEXT.search(body):
        return None  # an escaped control character or surrogate: the schema's text rule decides (Django, 422)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep for json; Django answers 400
        return None
    if (
        type(payload) is not dict
        or "value" not in payload
        or not payload.keys() <= _FIELDS
        or not _int_or_none(payload.get("ttl"))
        or not _int_or_none(payload.get("if_version"))
    ):
        return None
    try:
        principal = services.apikey_authenticate(secret)
        if principal is None:
            return None
        result = services.entry_set(
            tenant_id=principal.tenant_id,
            key=key,
            value=payload["value"],
            ttl=payload.get("ttl"),
            if_version=payload.get("if_version"),
        )
    except DomainError as exc:
        return json_answer(exc.status, exc.as_dict())
    except DatabaseError:
        return None  # Django answers (503 while the database is down); the statement did not commit.
    out = json.dumps(write_body(result)).encode()
    headers = [
        ("Content-Type", CONTENT_TYPE),
        ("ETag", etag(result.version)),
        ("X-Revision", str(result.revision)),
        ("Content-Length", str(len(out))),
    ]
    return "200 OK", headers, out
