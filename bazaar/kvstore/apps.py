from django.apps import AppConfig


class KvstoreConfig(AppConfig):
    name = "bazaar.kvstore"
    label = "kvstore"
    verbose_name = "Kvstore"
