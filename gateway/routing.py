"""The route table: which service answers which path prefix, built from the services' declarations.

Each service lists the public prefixes it serves in `apps/<service>/routes.toml` (the fields are
described in apps/identity/routes.toml); this module reads those files at import, without
importing Django or any service, and tests/routes checks every service's URLs and OpenAPI paths
against the table, so a service cannot serve a path the gateway does not route.

A prefix matches itself and anything below it at a segment boundary: `/api/tasks` matches
`/api/tasks` and `/api/tasks/42`, never `/api/tasksX`. The longest prefix wins. The root
prefix `/` matches `/` alone (a landing page), never the paths below it: a path no other
prefix names stays unrouted. A prefix declared for one kind of host only (`hosts = "apex"`
with no service declaring it for tenant hosts) is not routed on the other kind.
`/internal/...` is never public: a declaration under it is refused at import.
"""

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

APPS = Path(__file__).resolve().parent.parent / "apps"
DECLARATIONS = "routes.toml"
HOSTS = ("any", "apex", "tenant")
PRIVATE_PREFIXES = ("/internal",)


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str
    service: str
    # Some prefixes belong to a different service on a tenant host than on the apex.
    tenant_host_service: str | None = None
    # Server-rendered pages: an anonymous browser is sent to /login rather than given 401 JSON.
    page: bool = False
    # The kinds of host it is served on: "any", or only "apex" or only "tenant".
    hosts: str = "any"


@dataclass(frozen=True, slots=True)
class Declaration:
    """One `[[route]]` of a service's routes.toml."""

    service: str  # the service that declared it (the apps/<service> folder)
    prefix: str
    process: str  # the gateway upstream: the service itself unless `process` says otherwise
    hosts: str = "any"
    page: bool = False
    pending: bool = False


class RouteDeclarationError(ValueError):
    pass


def _matches(prefix: str, path: str) -> bool:
    if prefix == "/":
        return path == "/"
    return path == prefix or path.startswith(prefix + "/")


def declarations_read(apps: Path = APPS) -> list[Declaration]:
    """Every service's declared routes, in service then file order."""
    declared = []
    for file in sorted(apps.glob(f"*/{DECLARATIONS}")):
        service = file.parent.name
        try:
            entries = tomllib.loads(file.read_text(encoding="utf-8")).get("route", [])
        except tomllib.TOMLDecodeError as error:
            raise RouteDeclarationError(f"{file}: {error}") from None
        declared += [_declaration(service, entry, where=f"{file}") for entry in entries]
    return declared


def _declaration(service: str, entry: dict[str, Any], *, where: str) -> Declaration:
    unknown = set(entry) - {"prefix", "page", "hosts", "process", "pending"}
    if unknown:
        raise RouteDeclarationError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    prefix = entry.get("prefix")
    if not isinstance(prefix, str) or not prefix.startswith("/") or (prefix != "/" and prefix.endswith("/")):
        raise RouteDeclarationError(f"{where}: prefix must start with / and not end with one, got {prefix!r}")
    if any(_matches(private, prefix) for private in PRIVATE_PREFIXES):
        raise RouteDeclarationError(f"{where}: {prefix} is never public")
    hosts = entry.get("hosts", "any")
    if hosts not in HOSTS:
        raise RouteDeclarationError(f"{where}: {prefix}: hosts must be one of {', '.join(HOSTS)}, got {hosts!r}")
    process = entry.get("process", service)
    flags = {name: entry.get(name, False) for name in ("page", "pending")}
    if not isinstance(process, str) or not all(isinstance(flag, bool) for flag in flags.values()):
        raise RouteDeclarationError(f"{where}: {prefix}: process is a name, page and pending are true or false")
    return Declaration(service=service, prefix=prefix, process=process, hosts=hosts, **flags)


def routes_build(declarations: Iterable[Declaration]) -> tuple[Route, ...]:
    """One Route per prefix: the apex's service, and the tenant host's when it differs.

    A prefix only one kind of host has a service for is served on that kind alone.
    """
    by_prefix: dict[str, dict[str, Declaration]] = {}
    for declaration in declarations:
        hosts = ("apex", "tenant") if declaration.hosts == "any" else (declaration.hosts,)
        slots = by_prefix.setdefault(declaration.prefix, {})
        for host in hosts:
            if host in slots:
                raise RouteDeclarationError(
                    f"{declaration.prefix} is declared twice for the {host} host:"
                    f" by {slots[host].service} and by {declaration.service}"
                )
            slots[host] = declaration
    routes = []
    for prefix, slots in by_prefix.items():
        apex, tenant = slots.get("apex"), slots.get("tenant")
        if apex is None or tenant is None:
            (only, declaration), *_ = slots.items()
            routes.append(Route(prefix, declaration.process, page=declaration.page, hosts=only))
            continue
        if apex.page != tenant.page:
            raise RouteDeclarationError(f"{prefix}: its apex and tenant-host services disagree on page")
        routes.append(
            Route(
                prefix,
                apex.process,
                tenant_host_service=tenant.process if tenant.process != apex.process else None,
                page=apex.page,
            )
        )
    return tuple(routes)


DECLARED: tuple[Declaration, ...] = tuple(declarations_read())
ROUTES: tuple[Route, ...] = routes_build(DECLARED)

_BY_PREFIX = {route.prefix: route for route in ROUTES}


def route_match(path: str) -> Route | None:
    """The route of the longest prefix that is `path` or ends where one of its segments does:
    the path, then the path up to each `/` from the right (a few dict lookups, not one test per
    route). The root prefix matches `/` alone."""
    if path == "/":
        return _BY_PREFIX.get("/")
    candidate = path
    while True:
        route = _BY_PREFIX.get(candidate)
        if route is not None and candidate != "/":
            return route
        cut = candidate.rfind("/")
        if cut <= 0:
            return None
        candidate = candidate[:cut]


def route_service(route: Route, *, on_tenant_host: bool) -> str | None:
    """The upstream that serves `route` on this kind of host; None when it is not served there."""
    if route.hosts != "any" and route.hosts != ("tenant" if on_tenant_host else "apex"):
        return None
    if on_tenant_host and route.tenant_host_service:
        return route.tenant_host_service
    return route.service
