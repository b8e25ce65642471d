"""ISBN-10/13 normalization and checksum validation."""

from __future__ import annotations


def normalize_isbn(raw: str | None) -> str | None:
    """Digits (and a final X) without hyphens or spaces, or None when it cannot be an ISBN at all."""
    if raw is None:
        return None
    s = raw.replace("-", "").replace(" ", "").upper()
    if len(s) == 10 and s[:9].isdigit() and (s[9].isdigit() or s[9] == "X"):
        return s
    if len(s) == 13 and s.isdigit():
        return s
    return None


def isbn_valid(isbn: str) -> bool:
    """True when a normalized ISBN has a correct check digit."""
    if len(isbn) == 10:
        total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(isbn))
        return total % 11 == 0
    if len(isbn) == 13 and isbn.isdigit():
        total = sum((1 if i % 2 == 0 else 3) * int(c) for i, c in enumerate(isbn))
        return total % 10 == 0
    return False
