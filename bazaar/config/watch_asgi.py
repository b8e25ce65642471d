"""ASGI entry point of the watch server (``GET /api/kv/watch`` only; bazaar.kvstore.watch_server).

Started by ``deploy/serve.py --watch-port`` as ``granian --interface asgi``. It runs the same WSGI application as
the app server (fast path, middleware, the API) for each request's opening, so answers are the app server's.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bazaar.config.settings.base")

from bazaar.config.wsgi import application as wsgi_application
from bazaar.kvstore.watch_server import WatchServer

application = WatchServer(wsgi_application)
