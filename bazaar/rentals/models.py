"""Rentals data."""
