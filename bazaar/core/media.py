"""Uploaded files (MEDIA_ROOT) under /media/ when no nginx is in front (``make run``, the embedded default).

nginx serves the same folder in the stack and compose (deploy/nginx.conf.tmpl, ``location /media/``); this view
is the fallback with the same rules: only image types are served (an upload named ``x.html`` is never rendered
as a page of this origin), paths cannot leave MEDIA_ROOT (``safe_join`` inside Django's ``serve``: ``..``,
absolute paths and encoded separators are 404), and every answer forbids scripts outright.
"""

from __future__ import annotations

import mimetypes
import posixpath

from django.conf import settings
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_safe
from django.views.static import serve

#: What may be served from uploads. Anything else is 404 (not 403: it does not say what exists).
SERVED_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
#: Thumbnails' names carry a random token and never change: cache them for a year. Other uploads for a day.
IMMUTABLE_DIRS = ("storefront/thumbs/",)
CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


@require_safe
def media(request: HttpRequest, path: str) -> HttpResponseBase:
    normalized = posixpath.normpath(path).lstrip("/")
    if normalized != path or normalized.startswith("..") or "\\" in path or "\x00" in path:
        raise Http404("No such file.")
    content_type, encoding = mimetypes.guess_type(normalized)
    if content_type not in SERVED_TYPES or encoding is not None:
        raise Http404("No such file.")
    response = serve(request, normalized, document_root=str(settings.MEDIA_ROOT))
    immutable = normalized.startswith(IMMUTABLE_DIRS)
    response["Cache-Control"] = (
        "public, max-age=31536000, immutable" if immutable else "public, max-age=86400"
    )
    response["Content-Security-Policy"] = CSP
    return response
