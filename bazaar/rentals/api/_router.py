from ninja import Router

from bazaar.accounts.auth import staff_auth

router = Router(tags=["rentals"], auth=staff_auth)
