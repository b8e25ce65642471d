from django.apps import AppConfig


class KvstoreConfig(AppConfig):
    name = "bazaar.kvstore"
    label = "kvstore"
    verbose_name = "Kvstore"

    def ready(self) -> None:
        from bazaar.config.celery import app
        from bazaar.core import fastpath
        from bazaar.kvstore import conf
        from bazaar.kvstore.cache import fast_get

        # Cache hits of GET /api/kv/keys/<key> are answered before Django (one MGET: entry + key validity).
        fastpath.register_handler(r"^/api/kv/keys/(?P<key>.+)$", fast_get)
        app.conf.beat_schedule["kvstore-purge-expired"] = {
            "task": "bazaar.kvstore.tasks.purge_expired",
            "schedule": float(conf.purge_interval()),
        }
