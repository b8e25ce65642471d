from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "bazaar.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from bazaar.core import db, fastpath

        connection_created.connect(db.install, dispatch_uid="bazaar.core.db.install")
        from bazaar.core.views import HOME_SCOPE

        fastpath.register(r"^/$", lambda m, qs: (HOME_SCOPE, "anon"), content_type="text/html; charset=utf-8")
