"""Absolute links for what leaves the site (e-mails, the share link, the QR code): ``settings.SITE_URL`` + path."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage


def absolute(path: str) -> str:
    """``SITE_URL`` + a site path; a URL that is absolute already (``MEDIA_URL`` on another host) stays as is."""
    if path.startswith(("https://", "http://", "//")):
        return f"https:{path}" if path.startswith("//") else path
    return f"{settings.SITE_URL}{path}"


def store_url(slug: str) -> str:
    return absolute(f"/s/{slug}/")


def media_url(name: str) -> str:
    """A stored file's URL (site-relative); empty for no file."""
    return default_storage.url(name) if name else ""
