"""The settings family: ``base`` (every process: server, worker, CLI, container; all environment variables are
parsed there) and ``test`` (pytest, set in pyproject.toml: ``base`` plus what only a test run wants)."""

import os as _os

# The single module of earlier releases: a deployment that still names it gets ``base``, not a start-up error.
if _os.environ.get("DJANGO_SETTINGS_MODULE") == __name__:
    from bazaar.config.settings.base import *  # noqa: F403
