from django.apps import AppConfig


class KvstoreConfig(AppConfig):
    name = "bazaar.kvstore"
    label = "kvstore"
    verbose_name = "Kvstore"

    def ready(self) -> None:
        from bazaar.config.celery import app
        from bazaar.core import fastpath
        from bazaar.kvstore import cache, conf
        from bazaar.kvstore.cache import fast_get
        from bazaar.kvstore.fast import fast_put

        # The entry read's declaration: its model dependency and the API-key flags that writes drop.
        cache.declare()
        # Cache hits of GET /api/kv/keys/<key> are answered before Django (one MGET: entry + key validity).
        fastpath.register_handler(r"^/api/kv/keys/(?P<key>.+)(?<!/history)$", fast_get)
        # Plain PUTs skip the framework too (same service call; anything unusual goes to Django).
        fastpath.register_write("PUT", r"^/api/kv/keys/(?P<key>.+)$", fast_put)
        app.conf.beat_schedule["kvstore-purge-expired"] = {
            "task": "bazaar.kvstore.tasks.purge_expired",
            "schedule": float(conf.purge_interval()),
        }
        app.conf.beat_schedule["kvstore-compact-history"] = {
            "task": "bazaar.kvstore.tasks.compact_history",
            "schedule": float(conf.compact_interval()),
        }
