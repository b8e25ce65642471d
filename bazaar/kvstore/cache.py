"""Kvstore's cache keys, the stored form of an entry, and the WSGI fast path for ``GET /api/kv/keys/<key>``.

Stored form
-----------
One cache entry per (tenant, key) under ``Scope("kvstore", "entry", "<tenant_id>:<key>")``, variant ``v2``::

    b"<version> <expires_at in ms since the epoch, 0 for none> <revision>\\n" + b'{"key":…,"value":…,…,"ttl":'

``revision`` is the tenant revision of the key's last write (its ``mod_revision``), sent as ``X-Revision``.

The response body is the stored JSON prefix followed by the seconds left (or ``null``) and ``}``, so the bytes are
never re-serialized, and "TTL left" is still exact on a hit. The header line lets both the Django view and the
fast path refuse an entry whose expiry has passed (expired entries are invisible at once, even if cached) and send
``ETag: "<version>"`` without parsing JSON.

API key check on the fast path (one round trip)
-----------------------------------------------
The fast path hashes the bearer secret and looks the digest up in an in-process dict ``digest → tenant id``. The
dict is filled only by the Django path after it checked the key in the database, and it can never go stale,
because a key's tenant never changes. *Validity* (not revoked) comes from Redis: the raw key
``kvstore:apikey:<digest>`` holds the tenant id, is set by the Django path after the database check (TTL
``KVSTORE_APIKEY_FLAG_TTL``) and deleted when the key is revoked (after commit). The fast path fetches that flag in
the same ``MGET`` as the entry (``core.cache.peek_with``) and serves only when the flag names the same tenant.
Anything else (unknown digest, no flag, a miss, an expired entry, a query string, an unusual key, an outage) goes
to Django unchanged.

While nearly every lookup of this process misses cold (random reads over far more keys than are cached), a key's
first read skips the lookup (``core.cache.skip_lookup``): one statement reads the entry *and* the key's validity
(``selectors.entry_stored_checked``: not revoked, this tenant's), so a revoked key is refused as at once as by the
flag; its second read is looked up and stored, as any cold miss's.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.utils import timezone

from bazaar.core import cache
from bazaar.core.cache import Scope

APP = "kvstore"
VARIANT = "v2"
CONTENT_TYPE = "application/json"
#: Per-client data: clients may keep a copy, but must revalidate with the ETag (cheap 304).
CACHE_CONTROL = "private, no-cache"
API_KEY_PREFIX = "kv_"

# The fast path handles only keys whose URL form and decoded form are the same ASCII string; others go to Django.
_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9._~:@!$&'()*+,;=/-]{1,256}$")
_tenant_by_digest: dict[str, int] = {}
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_DIGEST_MAP_MAX = 100_000


def simple_key(key: str) -> bool:
    """Whether the fast paths handle ``key`` (its URL form and decoded form are the same ASCII string)."""
    return _SIMPLE_KEY.match(key) is not None


def entry_scope(tenant_id: int, key: str) -> Scope:
    return Scope(APP, "entry", f"{tenant_id}:{key}")


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def flag_key(digest: str) -> str:
    return cache.raw_key(APP, "apikey", digest)


def remember_key(digest: str, tenant_id: int) -> None:
    """Record a database-checked key: its tenant in this process, its validity flag in the shared cache."""
    if len(_tenant_by_digest) >= _DIGEST_MAP_MAX:
        _tenant_by_digest.clear()
    _tenant_by_digest[digest] = tenant_id
    from bazaar.kvstore import conf

    cache.set_raw(flag_key(digest), str(tenant_id).encode(), conf.apikey_flag_ttl())


_AUTH_SCOPE = Scope(APP, "auth", "-")


def known_tenant(digest: str) -> int | None:
    """The tenant of a key this process has checked in the database, if its validity flag is still set.

    One cache round trip. (core.cache has no plain raw-key read; ``peek_with`` on a scope that never holds an
    entry fetches just the flag.) None sends the caller to the database.
    """
    tenant_id = _tenant_by_digest.get(digest)
    if tenant_id is None:
        return None
    _found, extras = cache.peek_with(_AUTH_SCOPE, "none", (flag_key(digest),))
    return tenant_id if extras[0] == str(tenant_id).encode() else None


def forget_key_on_commit(digest: str) -> None:
    """A key was revoked: drop its validity flag once the revocation commits."""
    cache.delete_raw_on_commit(flag_key(digest))


def invalidate_entry(tenant_id: int, key: str) -> None:
    """Drop the cached entry once the current transaction commits: for the raw-SQL writes (PUT, CAS, delete,
    batches, import), which send no signals; ORM writes of entries are seen by the declared dependency."""
    cache.invalidate(entry_scope(tenant_id, key))


def _entry_scopes(entry: Any) -> list[Scope]:
    return [entry_scope(entry.tenant_id, entry.key)]


def _forget_apikey(apikey: Any) -> None:
    forget_key_on_commit(apikey.digest)


def declare() -> None:
    """Called once from KvstoreConfig.ready(): the entry read (private to its tenant: served by :func:`fast_get`
    and the API view after their key checks, never by the shared fast path or the edge), and the API-key validity
    flags, which every write of a key drops (a revoked key is refused on the next request)."""
    from bazaar.core import freshness, surfaces
    from bazaar.kvstore.models import Entry, TenantApiKey

    surfaces.declare(
        "kvstore.entry",
        app=APP,
        entity="entry",
        path=r"^/api/kv/keys/(?P<key>.+)$",
        shared=False,
        content_type=CONTENT_TYPE,
        depends_on={Entry: freshness.on(_entry_scopes, moves=("tenant", "key"))},
    )
    freshness.effect(TenantApiKey, _forget_apikey, fields=("revoked_at", "tenant", "digest"))


def entry_surface() -> Any:
    from bazaar.core import surfaces

    return surfaces.get("kvstore.entry")


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.isoformat().replace("+00:00", "Z")


def pack(
    *,
    key: str,
    value_json: str,
    version: int,
    created_at: datetime,
    updated_at: datetime,
    expires_at: datetime | None,
    revision: int = 0,
) -> bytes:
    """The stored form of an entry (see the module docstring)."""
    expires_ms = 0 if expires_at is None else int(expires_at.timestamp() * 1000)
    # The value is already compact JSON text: spliced in, never parsed and dumped again. A timestamp's ISO form
    # needs no JSON escaping; the key does (one shared encoder: json.dumps with options builds one per call).
    expires = "null" if expires_at is None else f'"{iso(expires_at)}"'
    prefix = (
        f'{{"key":{_COMPACT.encode(key)},"value":{value_json},"version":{version},'
        f'"created_at":"{iso(created_at)}","updated_at":"{iso(updated_at)}",'
        f'"expires_at":{expires},"revision":{revision},"ttl":'
    )
    return b"%d %d %d\n%s" % (version, expires_ms, revision, prefix.encode())


#: The stored form of "no such key": 404s are cached too (a write of the key invalidates it like any other).
ABSENT = b"0 0\n"


def unpack(stored: bytes, now_ms: float) -> tuple[int, bytes, bytes] | None:
    """``(version, response body, revision)`` for a stored entry still alive at ``now_ms``, else None."""
    nl = stored.find(b"\n")
    if nl < 0:
        return None
    version_raw, _, rest = stored[:nl].partition(b" ")
    expires_raw, _, revision = rest.partition(b" ")
    version = int(version_raw)
    if version == 0:
        return None  # a cached "no such key"
    expires_ms = int(expires_raw or 0)
    if expires_ms:
        left = expires_ms - now_ms
        if left <= 0:
            return None
        ttl = b"%d" % math.ceil(left / 1000)
    else:
        ttl = b"null"
    return version, stored[nl + 1 :] + ttl + b"}", revision or b"0"


def etag(version: int) -> str:
    return f'"{version}"'


def etag_matches(header: str | None, tag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return tag in [c.strip().removeprefix("W/") for c in header.split(",")]


def plain_request(match: re.Match[str], environ: dict[str, Any]) -> tuple[str, str] | None:
    """``(API key secret, key)`` of a request the fast paths handle: a bearer API key, a simple key, no query."""
    if environ.get("QUERY_STRING"):
        return None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if not auth.startswith("Bearer " + API_KEY_PREFIX):
        return None
    key = match["key"]
    if not simple_key(key):
        return None
    return auth[7:], key


def _not_found(key: str) -> tuple[str, list[tuple[str, str]], bytes]:
    from bazaar.core.errors import NotFound
    from bazaar.core.fastpath import json_answer

    return json_answer(
        404, NotFound(f"No key {key!r}.", code="key_not_found", details={"key": key}).as_dict()
    )


def _from_database(environ: dict[str, Any], read: Callable[[], bytes | None]) -> bytes | None:
    """``read()`` (one statement) with the connection upkeep of a view; None (→ Django, 503 while the database is
    down) on a database error."""
    from django.db import DatabaseError

    from bazaar.core import fastpath

    try:
        with fastpath.database(environ):
            return read()
    except DatabaseError:
        return None


def _fill(
    look: cache.Lookup, environ: dict[str, Any], tenant_id: int, key: str, now: datetime
) -> bytes | None:
    """A miss built right here: one indexed statement (``selectors.entry_stored``, the API view's own build),
    stored under the generation the lookup read if ``core.cache.admit`` lets it. None (→ Django) on a database
    or cache outage."""
    from bazaar.kvstore import conf, selectors

    if len(key) > conf.max_key_length():
        return None  # Django answers 422
    admitted = cache.admit(look)  # a cold miss is stored only on its second time (core.cache.admit)
    ready = cache.ready_to_fill(look) if admitted else None
    if admitted and ready is None:
        return None  # the cache is out: Django answers
    stored = _from_database(environ, lambda: selectors.entry_stored(tenant_id=tenant_id, key=key, now=now))
    if stored is not None and ready is not None:
        cache.fill(ready, stored, ttl=conf.cache_ttl())
    return stored


def _read_checked(
    environ: dict[str, Any], digest: str, tenant_id: int, key: str, now: datetime
) -> bytes | None:
    """A read that skipped the lookup (``core.cache.skip_lookup``): the entry and the API key's validity from the
    database in one statement. None (→ Django) for a revoked key, a database outage or an over-long key."""
    from bazaar.kvstore import conf, selectors

    if len(key) > conf.max_key_length():
        return None  # Django answers 422
    return _from_database(
        environ,
        lambda: selectors.entry_stored_checked(digest=digest, tenant_id=tenant_id, key=key, now=now),
    )


def fast_get(
    match: re.Match[str], environ: dict[str, Any]
) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """The fast-path handler for ``GET /api/kv/keys/<key>`` (registered in KvstoreConfig.ready()).

    A hit is one cache round trip (the entry and the API key's validity flag in one ``MGET``). A miss of a key
    whose API key is known costs one indexed statement more and is stored for the next reader (a cold one on its
    second miss: ``core.cache.admit``); a missing or expired key answers the API's 404. Everything else goes to Django."""
    plain = plain_request(match, environ)
    if plain is None:
        return None
    secret, key = plain
    digest = hashlib.sha256(secret.strip().encode()).hexdigest()
    tenant_id = _tenant_by_digest.get(digest)
    if tenant_id is None:
        return None
    scope = entry_scope(tenant_id, key)
    now = timezone.now()
    if cache.skip_lookup(scope, VARIANT):  # random reads over far more keys than are cached: one statement
        read = _read_checked(environ, digest, tenant_id, key, now)
        if read is None:
            return None
        stored, state = read, "miss"
    else:
        look = cache.lookup(scope, VARIANT, (flag_key(digest),))
        if look is None or look.extras[0] != str(tenant_id).encode():
            return None
        if look.found is not None:
            stored, state = look.found.body, "hit"
        else:
            filled = _fill(look, environ, tenant_id, key, now)
            if filled is None:
                return None
            stored, state = filled, "miss"
    unpacked = unpack(stored, now.timestamp() * 1000)
    if unpacked is None:
        return _not_found(key)
    version, body, revision = unpacked
    tag = etag(version)
    headers = [
        ("ETag", tag),
        ("Cache-Control", CACHE_CONTROL),
        ("X-Cache", state),
        ("X-Revision", revision.decode()),
    ]
    if etag_matches(environ.get("HTTP_IF_NONE_MATCH"), tag):
        return "304 Not Modified", headers, b""
    headers += [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))]
    return "200 OK", headers, body
