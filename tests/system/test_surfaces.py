"""One declaration per cached surface: the fast-path routes, the edge purge paths, the nginx location and the views'
caching all come from bazaar.core.surfaces, and these tests fail when a cached route exists in one place only."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin

from bazaar.core import edge, fastpath, freshness, surfaces
from bazaar.core.cache import Scope

ROOT = Path(__file__).resolve().parents[2]

#: One URL per surface that its path must match (and the scope id the URL names, for edge paths).
SAMPLES: dict[str, tuple[str, str | int]] = {
    "core.home": ("/", "page"),
    "storefront.store_page": ("/s/demo-shop/", "demo-shop"),
    "rentals.catalogue_page": ("/rentals/", "all"),
    "rentals.catalogue_json": ("/api/rentals/titles", "all"),
    "rentals.title_page": ("/rentals/titles/7/", 7),
    "rentals.title_json": ("/api/rentals/titles/7", 7),
    "trading.trainer_page": ("/trading/", "all"),
    "trading.trainers_json": ("/api/trading/trainers", "all"),
    "trading.pokemon_json": ("/api/trading/pokemon/p001/history", "all"),
    "kvstore.entry": ("/api/kv/keys/greeting", "1:greeting"),
}


def _stack() -> Any:
    spec = importlib.util.spec_from_file_location("bazaar_stack", ROOT / "deploy" / "stack.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_surface_has_a_sample_and_its_path_matches_it() -> None:
    names = {s.name for s in surfaces.all_surfaces()}
    assert names == set(SAMPLES), "add the new surface to SAMPLES (and to the writer matrix)"
    for s in surfaces.all_surfaces():
        assert re.match(s.path, SAMPLES[s.name][0]), s.name


def test_fast_path_routes_are_exactly_the_declared_shared_surfaces(settings: Any) -> None:
    from bazaar.storefront import conf

    declared = {s.path for s in surfaces.all_surfaces() if s.resolve is not None and s.fast}
    assert {r.pattern.pattern for r in fastpath.routes()} == declared
    for s in surfaces.all_surfaces():
        if s.resolve is None:
            continue
        assert s.shared, f"{s.name}: only shared bytes may be served before Django"
        m = re.match(s.path, SAMPLES[s.name][0])
        assert m is not None
        named = s.resolve(m, "")
        assert named is not None, s.name
        assert s.covers(named[0]), s.name
        assert s.resolve(m, "x=1") is None, f"{s.name}: an unusual query string must go to Django"
    assert conf.cache_enabled()  # the store page's route is registered only with the cache on


def test_edge_paths_come_from_the_declarations_and_match_their_routes() -> None:
    families = {(s.app, s.entity) for s in surfaces.edge_surfaces()}
    assert set(edge._mappers) == families
    for s in surfaces.edge_surfaces():
        url, scope_id = SAMPLES[s.name]
        paths = edge.urls_for(Scope(s.app, s.entity, scope_id))
        assert url in paths, s.name
        for p in paths:  # every purged path is a page some edge surface serves
            assert any(re.match(o.path, p) for o in surfaces.edge_surfaces()), p
    # Private surfaces never reach the fast path or the edge.
    for s in surfaces.all_surfaces():
        if not s.shared:
            assert s.resolve is None
            assert s.edge_path is None


def test_nginx_location_is_rendered_from_the_surfaces() -> None:
    location = re.compile(surfaces.nginx_location())
    for s in surfaces.all_surfaces():
        url = SAMPLES[s.name][0]
        assert bool(location.match(url)) == (s.edge_path is not None), url
    for private in ("/api/kv/keys/x", "/s/shop/orders", "/admin/", "/api/trading/pokemon"):
        assert not location.match(private), private
    template = (ROOT / "deploy" / "nginx.conf.tmpl").read_text()
    assert 'location ~ "{edge_location}"' in template
    assert "rentals/titles" not in template  # no hand-kept copy of any route


def test_the_compose_nginx_conf_is_the_rendered_template() -> None:
    committed = (ROOT / "deploy" / "nginx.conf").read_text()
    assert committed == _stack().compose_conf(), "run: python deploy/stack.py compose-conf"


def test_views_cache_only_through_a_surface() -> None:
    """``cache.get_or_build`` is called only by core; everything else goes through ``Surface.get_or_build``."""
    offenders = []
    for path in (ROOT / "bazaar").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if "/tests/" in rel or rel.startswith(("bazaar/core/cache/", "bazaar/core/surfaces.py")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get_or_build"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("cache", "core_cache")
            ):
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


def test_every_model_a_surface_depends_on_writes_through_a_fresh_queryset() -> None:
    watched = freshness.watched()
    assert watched, "no dependencies declared"
    for model in watched:
        qs = model._default_manager.get_queryset()
        assert isinstance(qs, freshness.FreshQuerySet), (
            f"{model._meta.label}: use FreshQuerySet as its manager"
        )
    declared = {m for s in surfaces.all_surfaces() for m in s.depends_on}
    assert declared <= set(watched)


def test_admins_of_watched_models_are_known() -> None:
    """Every admin (and inline) that writes a watched model has a row in the writer matrix."""
    from tests.system.test_freshness import ADMIN_ROWS

    watched = set(freshness.watched())
    writers: set[str] = set()
    for model, model_admin in admin.site._registry.items():
        if model in watched:
            writers.add(model._meta.label)
        for inline in model_admin.inlines:
            if inline.model in watched:
                writers.add(f"{model._meta.label}>{inline.model._meta.label}")
    assert writers == set(ADMIN_ROWS), "add a writer-matrix row for the new admin"


def test_commands_are_known() -> None:
    """Every management command Bazaar ships is in the writer matrix or declared as not writing watched data."""
    from django.core.management import get_commands

    from tests.system.test_freshness import COMMAND_ROWS, COMMANDS_NOT_WRITING

    ours = {name for name, app in get_commands().items() if app.startswith("bazaar.")}
    assert ours == set(COMMAND_ROWS) | set(COMMANDS_NOT_WRITING)


def test_middleware_is_pinned() -> None:
    """The WSGI fast path answers before every middleware below. Adding, removing or reordering one must come with
    a decision about the fast path (does a fast answer need what it adds? e.g. a header) and an update here."""
    assert settings.MIDDLEWARE == [
        # Its Content-Security-Policy reaches the fast path's answers through config/wsgi.py (decided with it).
        "bazaar.core.middleware.SecurityHeadersMiddleware",
        "bazaar.core.middleware.MetricsMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "bazaar.core.middleware.BodySizeLimitMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "bazaar.core.middleware.ApiNotFoundMiddleware",
    ]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_surface_describe_is_complete(name: str) -> None:
    described = {d["name"]: d for d in surfaces.describe()}
    assert described[name]["path"] == surfaces.get(name).path


def test_a_bypassed_surface_builds_every_time_and_stores_nothing(settings: Any) -> None:
    """CACHE_BYPASS_SURFACES (benchmarks of the uncached cost) skips the cache for the named surfaces only."""
    from bazaar.trading import cache as tcache

    builds: list[int] = []

    def build() -> bytes:
        builds.append(1)
        return b'{"n":%d}' % len(builds)

    settings.CACHE_BYPASS_SURFACES = ["trading.pokemon_json"]
    first = tcache.pokemon_json().get_or_build(tcache.POKEMON, "bypass-test", build)
    second = tcache.pokemon_json().get_or_build(tcache.POKEMON, "bypass-test", build)
    assert (first.hit, second.hit, first.body, second.body) == (False, False, b'{"n":1}', b'{"n":2}')
    kept = [tcache.trainers_json().get_or_build(tcache.TRAINERS, "bypass-test", build) for _ in range(2)]
    assert [c.hit for c in kept] == [False, True]  # other surfaces still cache
    assert len(builds) == 3
