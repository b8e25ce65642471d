"""Rentals JSON API (mounted at /api/rentals/ by bazaar.config.api).

Public (anonymous, cached bytes): the title list and title detail. Everything else needs staff
(``staff_auth``: a staff user's bearer token or session).
"""

from bazaar.rentals.api import catalogue, customers, desk, reports  # noqa: F401  (registers the endpoints)
from bazaar.rentals.api._router import router

__all__ = ["router"]
