"""The project's exceptions: one root, subclasses that also inherit a builtin.

The shell maps them to HTTP status codes and OGC exception codes in one place
(:data:`HTTP_STATUS`); the message is what a user sees, so it names the problem
and never leaks internals.
"""

from __future__ import annotations


class TianyaError(Exception):
    """Root of every error this project raises on purpose."""

    status = 500
    ogc_code = "NoApplicableCode"


class InvalidParameter(TianyaError, ValueError):
    """A query parameter, filter or option is not valid (HTTP 400)."""

    status = 400
    ogc_code = "InvalidParameterValue"


class InvalidFeature(TianyaError, ValueError):
    """A submitted feature breaks the layer's schema (HTTP 400)."""

    status = 400
    ogc_code = "InvalidParameterValue"


class PayloadTooLarge(TianyaError, ValueError):
    """A request body is larger than allowed (HTTP 413)."""

    status = 413
    ogc_code = "InvalidParameterValue"


class NotAuthenticated(TianyaError, PermissionError):
    """No or unknown credentials (HTTP 401)."""

    status = 401
    ogc_code = "NotAuthenticated"


class Forbidden(TianyaError, PermissionError):
    """The caller's role may not do this (HTTP 403)."""

    status = 403
    ogc_code = "Forbidden"


class NotFound(TianyaError, LookupError):
    """A collection or feature does not exist (HTTP 404)."""

    status = 404
    ogc_code = "NotFound"


class Conflict(TianyaError, RuntimeError):
    """The request conflicts with the resource's state (HTTP 409)."""

    status = 409
    ogc_code = "Conflict"


class RequestTimeout(TianyaError, TimeoutError):
    """The client did not send its request body in time (HTTP 408)."""

    status = 408
    ogc_code = "InvalidParameterValue"


class TooManyRequests(TianyaError, RuntimeError):
    """The caller has too much work under way; retry after ``retry_after`` s (HTTP 429)."""

    status = 429
    ogc_code = "NoApplicableCode"

    def __init__(self, message: str, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(TianyaError, ConnectionError):
    """The data store cannot be reached or timed out (HTTP 503)."""

    status = 503
    ogc_code = "NoApplicableCode"


def choices(value: object, valid, what: str) -> str:
    """Message for a value that is not one of ``valid``.

    Examples
    --------
    >>> choices("hexagon2", ["fishnet", "hexagon"], "aggregation")
    "'hexagon2' is not a valid aggregation, must be one of: fishnet, hexagon"
    """
    return f"{value!r} is not a valid {what}, must be one of: {', '.join(map(str, valid))}"
