"""Tenancy's refusals that name a case of its own; the rest are apps.common.exceptions' classes."""

from apps.common.exceptions import Conflict, ServiceError


class SlugTaken(Conflict):
    """Another tenant has the slug (checked first, and again by the unique row at insert)."""

    code = "slug_taken"


class IdentityUnavailable(ServiceError):
    """Identity did not answer signup's owner request, or answered with a failure of its own.

    A 503 without Retry-After: nothing here knows when identity will be back.
    """

    status = 503
    code = "identity_unavailable"
