"""Cached surfaces, each declared once: its URL, its scope, the models it depends on, whether its bytes are shared
by every anonymous visitor. Everything else is derived from the declaration:

* the view's caching: views build through :meth:`Surface.get_or_build` (a test fails if any module outside
  core calls ``cache.get_or_build`` directly);
* the WSGI fast-path route (shared surfaces with a ``resolve``), registered here;
* the nginx edge: the purge paths of a scope (``edge_path``), registered here, and the edge ``location`` of
  ``deploy/nginx.conf.tmpl`` and ``deploy/nginx.conf`` (:func:`nginx_location`; rendered, never hand-kept);
* freshness: ``depends_on`` becomes the model hooks of ``bazaar.core.freshness``.

Apps declare their surfaces in ``AppConfig.ready()`` (through their ``cache.py``). ``tests/test_surfaces.py``
fails when a cached route exists in one of those places and not in the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import models

from bazaar.core import cache, edge, fastpath, freshness, replica
from bazaar.core.cache import Cached, Scope

Resolver = Callable[[re.Match[str], str], "tuple[Scope, str] | None"]
HTML = "text/html; charset=utf-8"
JSON = "application/json"


@dataclass(frozen=True)
class Surface:
    """One cached page or API read. ``path`` is its anchored URL regex; entries live under scopes of the family
    ``(app, entity)``. ``shared`` bytes are identical for every anonymous visitor (rendered without the request),
    so the fast path and the nginx edge may serve them; private surfaces (per tenant, per user) are served only
    after their own checks. ``resolve(match, query_string)`` names the entry a plain GET of ``path`` serves (the
    fast path), ``edge_path(scope)`` the edge key of the scope's page on this surface (None: not edge-cached)."""

    name: str
    app: str
    entity: str
    path: str
    shared: bool
    content_type: str
    depends_on: Mapping[type[models.Model], freshness.Dependency] = field(default_factory=dict)
    resolve: Resolver | None = None
    edge_path: Callable[[Scope], str | None] | None = None
    fast: bool = True

    def covers(self, scope: Scope) -> bool:
        return scope.app == self.app and scope.entity == self.entity

    def get_or_build(
        self, scope: Scope, variant: str, build: Callable[[], bytes], *, ttl: int | None = None
    ) -> Cached:
        """``cache.get_or_build`` for an entry of this surface (its scope must be of the declared family)."""
        if not self.covers(scope):
            raise ValueError(f"{scope} is not a scope of surface {self.name}")
        if self.name in settings.CACHE_BYPASS_SURFACES:  # a benchmark measuring the uncached cost
            body = build()
            return Cached(body, cache.etag_for(body), hit=False)
        # A shared (public) entry may be built on the streaming replica when it has caught up (core.replica).
        return cache.get_or_build(scope, variant, replica.reading(build) if self.shared else build, ttl=ttl)


_surfaces: dict[str, Surface] = {}


def declare(
    name: str,
    *,
    app: str,
    entity: str,
    path: str,
    shared: bool,
    content_type: str,
    depends_on: Mapping[type[models.Model], freshness.Dependency],
    resolve: Resolver | None = None,
    edge_path: Callable[[Scope], str | None] | None = None,
    fast: bool = True,
) -> Surface:
    """Declare a cached surface and derive its fast-path route, edge purge paths and model hooks."""
    if name in _surfaces:
        return _surfaces[name]
    if not path.startswith("^/") or not path.endswith("$"):
        raise ValueError(f"surface {name}: path must be an anchored regex, got {path!r}")
    if (resolve or edge_path) and not shared:
        raise ValueError(f"surface {name}: only shared surfaces go to the fast path and the edge")
    surface = Surface(
        name, app, entity, path, shared, content_type, dict(depends_on), resolve, edge_path, fast
    )
    _surfaces[name] = surface
    for model, dep in depends_on.items():
        freshness.depend(model, dep)
    if resolve is not None and fast:
        fastpath.register(path, resolve, content_type=content_type)
    if edge_path is not None:
        path_of = edge_path

        def urls(scope: Scope) -> list[str]:
            found = path_of(scope)
            return [found] if found else []

        edge.register(app, entity, urls)
    return surface


def all_surfaces() -> list[Surface]:
    return list(_surfaces.values())


def get(name: str) -> Surface:
    return _surfaces[name]


def edge_surfaces() -> list[Surface]:
    return [s for s in _surfaces.values() if s.edge_path is not None]


def nginx_location() -> str:
    """The regex of nginx's edge-cached ``location``: the union of the edge-cached surfaces' paths."""
    parts = sorted(_NAMED.sub("(?:", s.path[1:-1]) for s in edge_surfaces())
    return "^(?:" + "|".join(parts) + ")$"


_NAMED = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")  # nginx's PCRE refuses a group name used twice


def depends(surface: Surface) -> list[type[models.Model]]:
    return list(surface.depends_on)


def family_surfaces(scope: Scope) -> list[Surface]:
    return [s for s in _surfaces.values() if s.covers(scope)]


def describe() -> list[dict[str, Any]]:
    """The declarations as data (docs, tests, ``bazaar surfaces``)."""
    return [
        {
            "name": s.name,
            "path": s.path,
            "scope": f"{s.app}:{s.entity}",
            "shared": s.shared,
            "fast_path": s.resolve is not None and s.fast,
            "edge": s.edge_path is not None,
            "depends_on": sorted(m._meta.label for m in s.depends_on),
        }
        for s in _surfaces.values()
    ]
