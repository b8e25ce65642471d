"""Django's PostgreSQL backend with a deadline on every round trip and a breaker (see ``bazaar.core.db``)."""

from __future__ import annotations

import time
from typing import Any

from django.db.backends.postgresql import base

from bazaar.core import db

#: A connection attempt that failed after this long timed out rather than being refused.
SLOW_CONNECT_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(db.guard)

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if not db.BREAKER.allow():
            raise db.unavailable()
        started = time.monotonic()
        try:
            conn = super().get_new_connection(conn_params)
        except Exception:
            # Only a slow failure (a connect timeout: the server does not answer) opens the breaker; a refused
            # connection already fails at once, and the next attempt may find the server back.
            if time.monotonic() - started >= SLOW_CONNECT_SECONDS:
                db.BREAKER.failed()
            else:
                db.BREAKER.release()
            raise
        db.BREAKER.succeeded()
        return conn

    def _commit(self) -> None:
        with db.watched(db.socket_of(self)):
            super()._commit()  # type: ignore[misc]

    def _rollback(self) -> None:
        with db.watched(db.socket_of(self)):
            super()._rollback()  # type: ignore[misc]
