"""WSGI entry point: Django behind the anonymous-page fast path (bazaar.core.fastpath)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bazaar.config.settings.base")

from bazaar.core.fastpath import FastPath
from bazaar.core.middleware import with_csp

# Django's responses get the Content-Security-Policy from SecurityHeadersMiddleware; with_csp adds the same
# policy to what the fast path answers before Django (it already sends the other security headers).
application = with_csp(FastPath(get_wsgi_application()))
