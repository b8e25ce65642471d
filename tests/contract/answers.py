"""Every error the API answers during the test run, recorded as (operation, status, code) — issue 14.

``install()`` (called once from the root ``conftest.py``) wraps Django's request handling and the WSGI fast path,
so whatever sends a request — the test client, schemathesis through ``bazaar.config.wsgi.application``, a parity
test — is seen. Each JSON error answer of an API operation is checked against the codes its OpenAPI document
declares for that status (``bazaar.config.openapi``): an undeclared one is a *violation*, reported by the
``answers_declared`` fixture at the end of the test that caused it. Everything seen is kept in ``OBSERVED`` for
the reachability check (``test_error_codes.py``): a declared code that nothing in the suite answers is a list
rotting.
"""

from __future__ import annotations

import contextvars
import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: (METHOD, OpenAPI path, status, code) of every error answer seen in this process.
OBSERVED: set[tuple[str, str, int, str]] = set()
#: Answers not declared for their operation and status, since the last ``take_violations()``.
_violations: list[str] = []
_in_django: contextvars.ContextVar[bool] = contextvars.ContextVar("answers_in_django", default=False)
_installed = False
_declared: dict[tuple[str, str], dict[int, frozenset[str]]] | None = None

_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def declared() -> dict[tuple[str, str], dict[int, frozenset[str]]]:
    """The codes the OpenAPI document declares, per operation and status (built once per process)."""
    global _declared
    if _declared is None:
        from bazaar.config.api import openapi_document
        from bazaar.config.openapi import declared_codes

        _declared = declared_codes(openapi_document())
    return _declared


def operation(method: str, path: str) -> tuple[str, str] | None:
    """The OpenAPI operation (METHOD, path template) a request reaches, or None for anything else."""
    if not path.startswith("/api/"):
        return None
    from django.urls import Resolver404, resolve

    try:
        match = resolve(path)
    except Resolver404:
        return None
    template = "/" + _CONVERTER.sub(r"{\1}", match.route)
    key = (method.upper(), template)
    return key if key in declared() else None


def record(method: str, path: str, status: int, content_type: str, body: bytes) -> None:
    if status < 400 or not content_type.startswith("application/json"):
        return
    op = operation(method, path)
    if op is None:
        return
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return
    if not isinstance(code, str):
        return
    OBSERVED.add((*op, status, code))
    if code not in declared()[op].get(status, frozenset()):
        _violations.append(f"{op[0]} {op[1]} answered {status} {code!r}, not declared for {status}")


def take_violations() -> list[str]:
    out = list(dict.fromkeys(_violations))
    _violations.clear()
    return out


def install() -> None:
    """Wrap Django's ``BaseHandler.get_response`` and the fast path's ``FastPath.__call__`` (once)."""
    global _installed
    if _installed:
        return
    _installed = True
    from django.core.handlers.base import BaseHandler

    from bazaar.core.fastpath import FastPath

    get_response = BaseHandler.get_response

    @functools.wraps(get_response)
    def recording_get_response(self: BaseHandler, request: Any) -> Any:
        _in_django.set(True)
        response = get_response(self, request)
        if not getattr(response, "streaming", False):
            record(
                request.method or "",
                request.path_info,
                response.status_code,
                response.get("Content-Type", ""),
                getattr(response, "content", b""),
            )
        return response

    fast_call = FastPath.__call__

    @functools.wraps(fast_call)
    def recording_call(
        self: FastPath, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        seen: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            seen["status"], seen["headers"] = status, headers
            return start_response(status, headers, *args)

        token = _in_django.set(False)
        try:
            out = fast_call(self, environ, capture)
            if _in_django.get() or "status" not in seen or int(seen["status"][:3]) < 400:
                return out
            body = b"".join(out)  # a fast-path answer is one small bytes object
            content_type = dict((k.lower(), v) for k, v in seen["headers"]).get("content-type", "")
            record(
                environ.get("REQUEST_METHOD", ""),
                environ.get("PATH_INFO", ""),
                int(seen["status"][:3]),
                content_type,
                body,
            )
            return [body]
        finally:
            _in_django.reset(token)

    BaseHandler.get_response = recording_get_response  # type: ignore[method-assign]
    FastPath.__call__ = recording_call  # type: ignore[method-assign]


#: Codes that only a fault produces, so no ordinary test provokes them: they are declared by core's machinery
#: and exempt from the reachability check. Keep this short; everything else must be answered by a test.
FAULT_ONLY = {
    # The database is down or paused (bazaar.core.db's deadline and breaker): test_faults.py, on PostgreSQL.
    "database_unavailable": "503 when the database cannot be reached",
    # A deadlock or serialization failure that survived its retry: only under real concurrency on PostgreSQL.
    "conflict_retry": "409 when a write collided with a concurrent one",
}

#: (METHOD, path, status, code) that only a concurrent request produces — the state changed between the
#: operation's read and its write — so no sequential test can provoke them. Declared, because a client can get
#: them; exempt from the reachability check, and each must stay here with its reason.
_KV_WRITES = (
    ("POST", "/api/kv/keys/{key}/incr"),
    ("PUT", "/api/kv/keys/{key}"),
    ("DELETE", "/api/kv/keys/{key}"),
    ("POST", "/api/kv/txn"),
    ("POST", "/api/kv/batch"),
    ("POST", "/api/kv/import"),
)
RACE_ONLY: dict[tuple[str, str, int, str], str] = {
    (
        "POST",
        "/api/rentals/returns",
        404,
        "rental_not_found",
    ): "the copy's rental went between lookup and lock",
    (
        "POST",
        "/api/rentals/returns",
        409,
        "already_returned",
    ): "a concurrent return of the same copy committed first",
    (
        "POST",
        "/api/storefront/stores/{slug}/orders",
        409,
        "product_changed",
    ): "the product was edited mid-order",
    (
        "POST",
        "/api/trading/import/trainers",
        409,
        "import_conflict",
    ): "another request created one of the ids",
    ("POST", "/api/trading/import/pokemon", 409, "import_conflict"): "another request created one of the ids",
    **{(m, p, 404, "tenant_not_found"): "the tenant was deleted while the write ran" for m, p in _KV_WRITES},
}

#: The tests whose answers are the evidence: every declared code must be answered by one of them (or be a fault).
OBSERVERS = (
    "tests/contract/test_schemathesis.py",
    "tests/contract/test_hostile_input.py",
    "tests/contract/test_access_matrix.py",
    "tests/contract/test_api_errors.py",
    "tests/contract/test_api_examples.py",
    "tests/contract/test_error_codes.py",
    "tests/system/test_fast_parity.py",
    "bazaar/accounts/tests/test_accounts.py",
    "bazaar/accounts/tests/test_throttle.py",
    "bazaar/storefront/tests/test_api.py",
    "bazaar/storefront/tests/test_fastpath.py",
    "bazaar/rentals/tests/test_api.py",
    "bazaar/rentals/tests/test_desk.py",
    "bazaar/rentals/tests/test_fastpath.py",
    "bazaar/trading/tests/test_api.py",
    "bazaar/trading/tests/test_keyset.py",
    "bazaar/trading/tests/test_import_preview.py",
    "bazaar/trading/tests/test_offers_counter.py",
    "bazaar/kvstore/tests/test_api.py",
    "bazaar/kvstore/tests/test_txn.py",
    "bazaar/kvstore/tests/test_history.py",
    "bazaar/kvstore/tests/test_watch.py",
    "bazaar/kvstore/tests/test_fastpath.py",
    "bazaar/kvstore/tests/test_import_stream.py",
    "bazaar/kvstore/tests/test_revisions.py",
)


def unreached(observed: set[tuple[str, str, int, str]]) -> list[str]:
    """Declared (operation, status, code) that nothing observed answered and no fault explains."""
    out = []
    for (method, path), statuses in sorted(declared().items()):
        for status, codes in sorted(statuses.items()):
            for code in sorted(codes):
                key = (method, path, status, code)
                if code not in FAULT_ONLY and key not in RACE_ONLY and key not in observed:
                    out.append(f"{method} {path} {status} {code}")
    return out


def observer_of(nodeid: str) -> bool:
    """Whether a test (by pytest node id) is one of the observing tests."""
    return nodeid.split("::")[0] in OBSERVERS


@dataclass
class Evidence:
    """What one test process saw of the reachability check, mergeable across processes (xdist workers) and runs
    (``make pytest``'s two phases, carried in a file): the answers observed, the observing tests collected
    before any deselection, those that ran (whatever their outcome) and the failed tests (a count that may add the
    same failure twice, as an xdist worker's and its controller's: only zero matters)."""

    observed: set[tuple[str, str, int, str]] = field(default_factory=set)
    collected: set[str] = field(default_factory=set)
    ran: set[str] = field(default_factory=set)
    failures: int = 0

    def merge(self, other: Evidence) -> Evidence:
        return Evidence(
            observed=self.observed | other.observed,
            collected=self.collected | other.collected,
            ran=self.ran | other.ran,
            failures=self.failures + other.failures,
        )

    def complete(self) -> bool:
        """Every observing file was collected and every observing test collected ran, with no failure: only then
        does the evidence speak for the whole suite (a path, ``-k``, ``-m``, one phase alone, ``--collect-only``
        or a lost worker leaves some collected test not run)."""
        files = {nodeid.split("::")[0] for nodeid in self.collected}
        return set(OBSERVERS) <= files and self.collected <= self.ran and self.failures == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "observed": sorted(self.observed),
            "collected": sorted(self.collected),
            "ran": sorted(self.ran),
            "failures": self.failures,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evidence:
        return cls(
            observed={(str(m), str(p), int(s), str(c)) for m, p, s, c in data.get("observed", [])},
            collected=set(data.get("collected", [])),
            ran=set(data.get("ran", [])),
            failures=int(data.get("failures", 0)),
        )


def verdict(evidence: Evidence) -> list[str] | None:
    """The declared codes nothing answered, or None when the evidence is incomplete and decides nothing."""
    return unreached(evidence.observed) if evidence.complete() else None
