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

    def close_if_unusable_or_obsolete(self) -> None:
        """Django's upkeep at each request's start and end (and a fast-path handler's, a task's), which also drops a
        connection whose server hung up while it sat idle: a restarted PostgreSQL, a terminated backend. Without
        it, the first request each idle connection served after a restart answered 503 (DATABASE_CONN_HEALTH_CHECKS
        is off: its round trip on every request is too dear). The check is one poll of the socket; only a socket
        that is readable with no query in flight costs a round trip (``is_usable``)."""
        super().close_if_unusable_or_obsolete()
        if (
            self.connection is not None
            and not self.in_atomic_block
            and db.spoke_first(db.socket_of(self))
            and not self.is_usable()
        ):
            self.close()

    def _commit(self) -> None:
        with db.watched(db.socket_of(self)):
            super()._commit()  # type: ignore[misc]

    def _rollback(self) -> None:
        with db.watched(db.socket_of(self)):
            super()._rollback()  # type: ignore[misc]
