"""How gateway.routing builds its table from declarations: the root prefix, and one-host prefixes."""

import pytest

from gateway.routing import (
    Declaration,
    Route,
    RouteDeclarationError,
    _matches,
    route_match,
    route_service,
    routes_build,
)


def _route(routes: tuple[Route, ...], prefix: str) -> Route:
    return next(route for route in routes if route.prefix == prefix)


@pytest.mark.parametrize(
    ("path", "matches"),
    [("/", True), ("/healthz", False), ("/admin", False), ("/api/docs", False), ("/signup", False), ("/x/", False)],
)
def test_the_root_prefix_matches_the_root_alone(path: str, matches: bool) -> None:
    assert _matches("/", path) is matches


def test_a_prefix_still_matches_at_segment_boundaries_only() -> None:
    assert _matches("/signup", "/signup") and _matches("/signup", "/signup/acme")
    assert not _matches("/signup", "/signupx")


def test_a_prefix_declared_for_one_kind_of_host_is_served_there_alone() -> None:
    routes = routes_build(
        [
            Declaration(service="tenancy", prefix="/", process="tenancy", hosts="apex", page=True),
            Declaration(service="identity", prefix="/me", process="identity", hosts="tenant"),
            Declaration(service="tenancy", prefix="/admin", process="tenancy", hosts="apex"),
            Declaration(service="identity", prefix="/admin", process="identity", hosts="tenant"),
        ]
    )

    root, me, admin = _route(routes, "/"), _route(routes, "/me"), _route(routes, "/admin")
    assert (route_service(root, on_tenant_host=False), route_service(root, on_tenant_host=True)) == ("tenancy", None)
    assert (route_service(me, on_tenant_host=False), route_service(me, on_tenant_host=True)) == (None, "identity")
    assert (route_service(admin, on_tenant_host=False), route_service(admin, on_tenant_host=True)) == (
        "tenancy",
        "identity",
    )
    assert root.page


def test_a_prefix_declared_twice_for_one_host_is_still_refused() -> None:
    with pytest.raises(RouteDeclarationError, match="declared twice"):
        routes_build(
            [
                Declaration(service="tenancy", prefix="/", process="tenancy", hosts="apex"),
                Declaration(service="projects", prefix="/", process="projects"),
            ]
        )


def test_the_declared_table_serves_the_landing_page_on_the_apex_only() -> None:
    for path in ("/", "/signup", "/signup/acme"):
        route = route_match(path)
        assert route is not None, path
        assert route_service(route, on_tenant_host=False) == "tenancy"
        # An organization's own address is its projects; it has no signup pages.
        assert route_service(route, on_tenant_host=True) == ("projects" if path == "/" else None)
    for path in ("/healthz", "/nowhere", "/index.html"):
        assert route_match(path) is None, path
