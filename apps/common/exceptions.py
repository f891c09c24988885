"""The one family of errors a service raises for a request it refuses.

A service function raises `NotFound("No such board", code="board_not_found", board_id=7)`;
the API layer never catches it. One handler per framework turns any ServiceError into the
platform's error shape (apps.common.errors.error_body) with its status and headers:
apps.common.ninja.platform_api installs it for Ninja, apps.common.drf.exception_handler
(settings.REST_FRAMEWORK) for DRF. Every service, old and new, uses these classes or
subclasses of them named for a domain case (`VersionConflict`, `SlugTaken`).
"""

from collections.abc import Mapping


class ServiceError(Exception):
    """A refusal the client caused or can act on: a status, a stable code, a sentence, and details."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details: dict[str, object] = details

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers the refusal needs (Retry-After on a 429 or 503)."""
        return {}


class InvalidInput(ServiceError):
    status = 400
    code = "validation_error"


class NotAuthenticated(ServiceError):
    status = 401
    code = "not_authenticated"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Gone(ServiceError):
    status = 410
    code = "gone"


class _RetryLater(ServiceError):
    def __init__(self, message: str, *, retry_after: int, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = max(1, int(retry_after))

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimited(_RetryLater):
    status = 429
    code = "rate_limited"


class Unavailable(_RetryLater):
    """A dependency this request needs is down for a moment (503): the client may retry."""

    status = 503
    code = "unavailable"
