"""WSGI entry point: Django behind the anonymous-page fast path (bazaar.core.fastpath)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bazaar.config.settings")

from bazaar.core.fastpath import FastPath

application = FastPath(get_wsgi_application())
