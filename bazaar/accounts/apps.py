from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "bazaar.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from bazaar.accounts import cache

        # Token flags in the cache are dropped by any write of a token or its user.
        cache.declare()

        from bazaar.core import tasks

        tasks.periodic("accounts-prune-login-counters", task="accounts.prune_login_counters", every=3600)
