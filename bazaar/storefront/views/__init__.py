"""Storefront pages: the public store (cached bytes) and the vendor's dashboard."""
