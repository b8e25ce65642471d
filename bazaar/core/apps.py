from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "bazaar.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from bazaar.core import surfaces
        from bazaar.core.views import HOME_SCOPE

        # The home page: the same bytes for every anonymous visitor (fast path and edge). It shows no data, so it
        # depends on no model; a deploy with a new template bumps the epoch (``bazaar cache flush``) or waits out
        # the TTL.
        surfaces.declare(
            "core.home",
            app=HOME_SCOPE.app,
            entity=HOME_SCOPE.entity,
            path=r"^/$",
            shared=True,
            content_type=surfaces.HTML,
            depends_on={},
            resolve=lambda m, qs: None if qs else (HOME_SCOPE, "anon"),
            edge_path=lambda scope: "/",
        )
