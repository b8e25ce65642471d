"""Product thumbnails: made once, when the image is uploaded, never on a page view.

Two widths (``WIDTHS``), JPEG (every browser and mail client shows it), never upscaled; the stored names carry a
random token, so a thumbnail's bytes never change under its URL and it can be cached for a year. The public page
reads the names and the size from the product row (``Product.thumb``/``thumb_small``/``thumb_width``/
``thumb_height``) and never opens a file.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps, UnidentifiedImageError

from bazaar.core.errors import ValidationFailed

#: Card width on a phone (240 CSS px) and its 2x for dense screens.
WIDTHS = (240, 480)
#: A decompression bomb is refused before it is decoded (Pillow's own guard raises beyond 2x this).
MAX_PIXELS = 40_000_000
THUMB_DIR = "storefront/thumbs"


@dataclass(frozen=True)
class Thumbs:
    small: bytes
    large: bytes
    width: int  # of the large one
    height: int


def render(image: File[bytes]) -> Thumbs:
    """Decode the upload and make both thumbnails. Raises ValidationFailed ``invalid_image`` for anything Pillow
    cannot read (a file that only claims to be an image) or that is absurdly large in pixels. Writes nothing."""
    image.seek(0)
    try:
        with Image.open(image) as src:
            if src.width * src.height > MAX_PIXELS:
                raise ValidationFailed(
                    "The image has too many pixels (at most 40 megapixels).", code="invalid_image"
                )
            src.load()
            pic = ImageOps.exif_transpose(src).convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError):
        raise ValidationFailed("The file is not an image we can read.", code="invalid_image")
    finally:
        image.seek(0)
    out = []
    for width in WIDTHS:
        copy = pic.copy()
        if copy.width > width:
            copy = copy.resize(
                (width, max(1, round(copy.height * width / copy.width))), Image.Resampling.LANCZOS
            )
        buf = io.BytesIO()
        copy.save(buf, "JPEG", quality=82, optimize=True, progressive=True)
        out.append((buf.getvalue(), copy.width, copy.height))
    return Thumbs(small=out[0][0], large=out[1][0], width=out[1][1], height=out[1][2])


def store(thumbs: Thumbs) -> tuple[str, str]:
    """Save both files under fresh names; returns (small, large) storage names."""
    token = secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")
    small = default_storage.save(f"{THUMB_DIR}/{token}-{WIDTHS[0]}.jpg", ContentFile(thumbs.small))
    large = default_storage.save(f"{THUMB_DIR}/{token}-{WIDTHS[1]}.jpg", ContentFile(thumbs.large))
    return small, large
