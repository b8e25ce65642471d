"""The settings family: ``base`` (every process: server, worker, CLI, container; all environment variables are
parsed there) and ``test`` (pytest, set in pyproject.toml: ``base`` plus what only a test run wants)."""
