"""Test settings (pytest-django's ``DJANGO_SETTINGS_MODULE``, pyproject.toml): ``base`` read from the same
environment, minus ``.env``, plus what only a test run wants. Processes a test starts inherit this module through
``DJANGO_SETTINGS_MODULE`` unless the test names another (production servers get ``base``: bench/harness.py)."""

from __future__ import annotations

import os
import tempfile

from bazaar.config.settings.base import *  # noqa: F403
from bazaar.config.settings.base import ALLOWED_HOSTS, env

# The test client's host.
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]

# The embedded cache: one SQLite file per test process (not var/cache.sqlite3, which a running `make run` uses);
# servers and commands a test starts inherit it through the environment. An xdist worker inherits its controller's
# environment too, so BAZAAR_TEST_CACHE_OWNER names the pytest process that made the path (its xdist worker id, ""
# outside xdist): a worker whose id is not the owner makes its own file; a process a test started keeps its parent's.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if "CACHE_SQLITE_PATH" not in os.environ or (
    _worker and os.environ.get("BAZAAR_TEST_CACHE_OWNER") != _worker
):
    os.environ["CACHE_SQLITE_PATH"] = f"{tempfile.gettempdir()}/bazaar-test-cache-{os.getpid()}.sqlite3"
    os.environ["BAZAAR_TEST_CACHE_OWNER"] = _worker
CACHE_SQLITE_PATH = env.str("CACHE_SQLITE_PATH")

# Fast password hashing: tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Static files straight from the source folders: no `collectstatic` manifest needed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
