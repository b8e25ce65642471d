"""Bazaar's PostgreSQL backend: Django's, with the sick-database guards of ``bazaar.core.db``."""
