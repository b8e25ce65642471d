"""The keyset cursor's text (no Django here: the benchmarks build cursors too)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any


def encode_keyset(order_key: str, values: Sequence[Any]) -> str:
    """The opaque cursor after a row whose ordering fields hold ``values`` (dates as ISO text): URL-safe base64 of
    the JSON list ``[order_key, *values]``, unpadded."""
    plain = [v.isoformat() if hasattr(v, "isoformat") else v for v in values]
    raw = json.dumps([order_key, *plain], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
