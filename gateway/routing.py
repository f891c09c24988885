"""The route table: which service answers which path prefix. Data, in one place.

A prefix matches itself and anything below it at a segment boundary: `/api/tasks`
matches `/api/tasks` and `/api/tasks/42`, never `/api/tasksX`. The longest prefix wins.
`/internal/...` is deliberately absent: service-to-service endpoints are never public.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str
    service: str
    # Some prefixes belong to a different service on a tenant host than on the apex.
    tenant_host_service: str | None = None
    # Server-rendered pages: an anonymous browser is sent to /login rather than given 401 JSON.
    page: bool = False


ROUTES: tuple[Route, ...] = (
    Route("/api/tenants", "tenancy"),
    Route("/api/auth", "identity"),
    Route("/api/users", "identity"),
    Route("/api/roles", "identity"),
    Route("/.well-known/jwks.json", "identity"),
    Route("/login", "identity"),
    Route("/logout", "identity"),
    Route("/api/projects", "projects"),
    Route("/api/boards", "projects"),
    Route("/api/tasks", "projects"),
    Route("/projects", "projects", page=True),
    Route("/boards", "projects", page=True),
    Route("/ws", "projects_ws"),  # the projects service's WebSockets run on their own ASGI process
    Route("/static", "projects"),
    Route("/api/links", "shortener"),
    Route("/s", "shortener"),
    Route("/api/analytics", "analytics"),
    Route("/analytics", "analytics", page=True),
    # Platform staff manage tenants on the apex; an organization's admins manage its users on its host.
    Route("/admin", "tenancy", tenant_host_service="identity"),
)

_BY_LENGTH = sorted(ROUTES, key=lambda route: len(route.prefix), reverse=True)


def route_match(path: str) -> Route | None:
    for route in _BY_LENGTH:
        if path == route.prefix or path.startswith(route.prefix + "/"):
            return route
    return None


def route_service(route: Route, *, on_tenant_host: bool) -> str:
    if on_tenant_host and route.tenant_host_service:
        return route.tenant_host_service
    return route.service
