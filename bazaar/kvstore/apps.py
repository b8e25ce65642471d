from django.apps import AppConfig


class KvstoreConfig(AppConfig):
    name = "bazaar.kvstore"
    label = "kvstore"
    verbose_name = "Kvstore"

    def ready(self) -> None:
        from bazaar.core import fastpath, middleware, tasks
        from bazaar.kvstore import cache, conf
        from bazaar.kvstore.cache import fast_get
        from bazaar.kvstore.fast import fast_put

        # The entry read's declaration: its model dependency and the API-key flags that writes drop.
        cache.declare()
        # Cache hits of GET /api/kv/keys/<key> are answered before Django (one MGET: entry + key validity).
        fastpath.register_handler(r"^/api/kv/keys/(?P<key>.+)(?<!/history)$", fast_get)
        # Plain PUTs skip the framework too (same service call; anything unusual goes to Django).
        fastpath.register_write("PUT", r"^/api/kv/keys/(?P<key>.+)$", fast_put)
        middleware.allow_uploads("/api/kv/import")
        tasks.periodic("kvstore-purge-expired", task="kvstore.purge_expired", every=conf.purge_interval())
        tasks.periodic(
            "kvstore-compact-history", task="kvstore.compact_history", every=conf.compact_interval()
        )
