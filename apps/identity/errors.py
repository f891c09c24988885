"""Identity's refusals that name a case of its own; the rest are apps.common.exceptions' classes.

apps.common.drf.exception_handler answers all of them, Retry-After included.
"""

from apps.common.exceptions import NotAuthenticated, RateLimited

# One message for every way a sign-in can fail, so the answer does not reveal which part was wrong.
BAD_CREDENTIALS_MESSAGE = "Email or password is incorrect"


class InvalidCredentials(NotAuthenticated):
    """A sign-in (or a password check) that failed."""

    code = "invalid_credentials"


class InvalidRefreshToken(NotAuthenticated):
    """A refresh token that is malformed, expired, unknown, used up or revoked."""

    code = "invalid_token"


class LoginThrottled(RateLimited):
    """Too many failed sign-ins for the account or the address (apps/identity/throttling.py)."""

    code = "throttled"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed sign-in attempts. Try again in {retry_after} seconds.", retry_after=retry_after
        )
