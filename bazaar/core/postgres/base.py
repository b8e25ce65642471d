"""Django's PostgreSQL backend with a deadline on every round trip and a breaker (see ``bazaar.core.db``)."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base

from bazaar.core import db


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(db.guard)

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if not db.BREAKER.allow():
            raise db.unavailable()
        try:
            conn = super().get_new_connection(conn_params)
        except Exception:
            db.BREAKER.failed()
            raise
        db.BREAKER.succeeded()
        return conn

    def _commit(self) -> None:
        with db.watched(db.socket_of(self)):
            super()._commit()  # type: ignore[misc]

    def _rollback(self) -> None:
        with db.watched(db.socket_of(self)):
            super()._rollback()  # type: ignore[misc]
