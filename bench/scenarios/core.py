"""Foundation scenarios: the cached home page (anonymous), next to nginx serving the same bytes."""

from __future__ import annotations

from typing import Any

from bench.harness import Context, Scenario, compare_with_nginx


def home_cached(ctx: Context) -> dict[str, Any]:
    return compare_with_nginx(ctx, "home_cached", "/")


SCENARIOS = [
    Scenario(
        "home_cached",
        "anonymous home page served as cached bytes through core.cache",
        home_cached,
        rounds="own",
    ),
]
