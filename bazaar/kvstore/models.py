"""Kvstore data."""
