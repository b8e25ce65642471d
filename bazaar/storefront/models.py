"""Storefront data."""
