"""One error vocabulary for every app.

Services raise a ``DomainError`` subclass with a stable ``code``; ``bazaar.config.api`` maps them (and Ninja's
own validation and auth errors) once to ``{"code", "message", "details"}`` with the status below. Views that
render HTML catch ``DomainError`` and show ``message`` to the user.
"""

from __future__ import annotations

from typing import Any, ClassVar

#: Sent with every 401: the credentials this API takes (a user's token or a tenant's key, or the session cookie).
WWW_AUTHENTICATE = 'Bearer realm="bazaar", Session realm="bazaar"'


class DomainError(Exception):
    """Base of every expected failure. ``code`` is stable API; ``message`` is for people."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "The request could not be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None, details: Any = None) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.details = details
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class BadRequest(DomainError):
    status = 400
    code = "bad_request"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    default_message = "Authentication credentials were not provided or are invalid."


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"
    default_message = "You are not allowed to do this."


class NotFound(DomainError):
    status = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(DomainError):
    status = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    default_message = "The request body is too large."


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"
    default_message = "This endpoint takes a JSON body: send Content-Type: application/json."


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"
    default_message = "The request is not valid."


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    default_message = "Too many attempts; try again later."
