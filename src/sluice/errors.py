"""Every error Sluice raises on purpose, grouped by what the caller should do next.

::

    SluiceError
    ├── ApiError                  answered to an API client as {"error", "details"}
    │   ├── BadRequest            400
    │   ├── Unauthorized          401
    │   ├── Forbidden             403
    │   ├── NotFound              404
    │   ├── Conflict              409
    │   └── ValidationFailed      422 (details name the field)
    ├── ConfigurationError        a setting or definition is wrong; fix and restart
    ├── MappingError              an action's mapping failed for one event (category "mapping")
    └── DeliveryError             one delivery attempt failed
        ├── RetryableDelivery     try again later (``retry_after`` seconds if the vendor said)
        ├── FatalDelivery         never retry: goes to the error log at once
        └── SkippableDelivery     nothing to send (e.g. the event lacks what the vendor needs)

Foreign exceptions (aiohttp, sqlite3, psycopg) are translated into these at the
boundary where they are caught, with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any

ERROR_CATEGORIES = (
    "auth",
    "rate_limit",
    "http_4xx",
    "http_5xx",
    "timeout",
    "connection",
    "mapping",
)


class SluiceError(Exception):
    """Base of every error Sluice raises on purpose."""


class ApiError(SluiceError):
    status_code = 400

    def __init__(self, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class BadRequest(ApiError):
    status_code = 400


class Unauthorized(ApiError):
    status_code = 401


class Forbidden(ApiError):
    status_code = 403


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class ValidationFailed(ApiError):
    status_code = 422

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", [{"field": field, "message": message}])


class ConfigurationError(SluiceError):
    """A setting, a connector definition or a database is not usable as given."""


class MappingError(SluiceError):
    """An action's mapping could not produce a parameter for one event."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"parameter {parameter!r}: {message}")
        self.parameter = parameter
        self.message = message


class DeliveryError(SluiceError):
    """One attempt to deliver failed; ``category`` is one of ERROR_CATEGORIES."""

    def __init__(
        self,
        category: str,
        message: str,
        *,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.category = category
        self.message = message
        self.status_code = status_code


class RetryableDelivery(DeliveryError):
    def __init__(
        self,
        category: str,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(category, message, status_code=status_code)
        self.retry_after = retry_after


class FatalDelivery(DeliveryError):
    pass


class SkippableDelivery(DeliveryError):
    pass
