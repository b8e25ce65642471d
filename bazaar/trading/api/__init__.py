"""Trading JSON API (mounted at /api/trading/ by bazaar.config.api)."""

from ninja import Router

from bazaar.trading.api import catalog, imports, trades

router = Router(tags=["trading"])
router.add_router("", catalog.router)
router.add_router("", trades.router)
router.add_router("", imports.router)

__all__ = ["router"]
