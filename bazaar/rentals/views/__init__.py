"""Rentals pages: the public catalogue (``catalogue``), the circulation desk for staff (``desk``) and the
patron's own account (``account``). Every write goes through ``bazaar.rentals.services``, post/redirect/get."""
