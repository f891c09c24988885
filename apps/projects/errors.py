"""The projects service's refusals: apps.common.exceptions, plus the board domain's own cases.

The platform's handlers (apps.common.ninja.platform_api) answer them; only the wire codes
that predate the shared family are kept here.
"""

from apps.common import exceptions
from apps.common.exceptions import Conflict


class InvalidInput(exceptions.InvalidInput):
    """A value the projects service refuses; its wire code has always been "invalid"."""

    code = "invalid"


class VersionConflict(Conflict):
    code = "version_conflict"


class WipLimitReached(Conflict):
    code = "wip_limit_reached"
