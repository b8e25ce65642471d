from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "bazaar.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from bazaar.core import fastpath
        from bazaar.core.views import HOME_SCOPE

        fastpath.register(r"^/$", lambda m, qs: (HOME_SCOPE, "anon"), content_type="text/html; charset=utf-8")
