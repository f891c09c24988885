"""Domain errors. The API turns each into the platform's JSON error with its status."""


class ProjectsError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class InvalidInput(ProjectsError):
    status = 400
    code = "invalid"


class NotFound(ProjectsError):
    status = 404
    code = "not_found"


class Forbidden(ProjectsError):
    status = 403
    code = "forbidden"


class Conflict(ProjectsError):
    status = 409
    code = "conflict"


class VersionConflict(Conflict):
    code = "version_conflict"


class WipLimitReached(Conflict):
    code = "wip_limit_reached"
