"""ASGI entry point, kept for completeness. Serve WSGI in production: Django under ASGI measured 3-10x slower."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bazaar.config.settings.base")

application = get_asgi_application()
