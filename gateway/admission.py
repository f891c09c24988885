"""Whether a request may pass, decided in one order for HTTP and WebSocket alike:

route -> per-IP (and login/signup) limits -> tenant of the host -> token -> per-user limit.
Limits come first so floods are refused before they cost a tenant lookup or a signature check.
"""

from dataclasses import dataclass
from urllib.parse import quote

from starlette.requests import HTTPConnection

from gateway.auth import JwksCache, PresentedToken, csrf_check, path_is_public, token_from, token_verify
from gateway.config import GatewaySettings
from gateway.errors import GatewayError
from gateway.ratelimit import RateLimiter
from gateway.routing import Route, route_match, route_service
from gateway.tenants import Tenant, TenantDirectory, host_tenant_slug, tenant_require_active


@dataclass(frozen=True, slots=True)
class Admission:
    route: Route
    service: str
    tenant: Tenant | None
    claims: dict | None


async def request_admit(
    conn: HTTPConnection,
    *,
    method: str,
    settings: GatewaySettings,
    tenants: TenantDirectory,
    jwks: JwksCache,
    limiter: RateLimiter,
) -> Admission:
    path = conn.url.path
    route = route_match(path)
    if route is None:
        raise GatewayError(404, "not_found", f"No route for {path}")

    client_ip = conn.client.host if conn.client else "unknown"
    for policy in limiter.policies_for(method=method, path=path):
        await limiter.hit(policy, identifier=client_ip)

    slug = host_tenant_slug(conn.headers.get("host", ""), base_domain=settings.base_domain)
    tenant = None
    if slug is not None:
        tenant = await tenants.tenant_get(slug=slug)
        conn.state.tenant_slug = slug
        tenant_require_active(tenant, retry_after=settings.tenant_retry_after)
    service = route_service(route, on_tenant_host=tenant is not None)
    conn.state.service = service

    claims = None
    if not path_is_public(method, path):
        token = token_from(headers=conn.headers, cookies=conn.cookies, subprotocols=conn.scope.get("subprotocols"))
        claims = await _claims_for(
            conn, token=token, route=route, method=method, settings=settings, jwks=jwks, tenant=tenant
        )
        conn.state.user_id = str(claims["sub"])
        await limiter.hit(limiter.per_user, identifier=str(claims["sub"]))
    return Admission(route=route, service=service, tenant=tenant, claims=claims)


async def _claims_for(
    conn: HTTPConnection,
    *,
    token: PresentedToken | None,
    route: Route,
    method: str,
    settings: GatewaySettings,
    jwks: JwksCache,
    tenant: Tenant | None,
) -> dict:
    wants_page = route.page and method == "GET" and "text/html" in conn.headers.get("accept", "")
    try:
        if token is None:
            raise GatewayError(
                401,
                "invalid_token",
                "Sign in: send an access token (Authorization: Bearer, or the access_token cookie)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        claims = await token_verify(
            token=token.value, jwks=jwks, settings=settings, tenant_id=tenant.id if tenant else None
        )
    except GatewayError as error:
        if wants_page and error.status == 401:
            # A browser opening a page is better served by a page than by JSON: identity renews
            # an expired session from its refresh cookie, or shows the login form.
            target = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
            location = f"/api/auth/resume?next={quote(target, safe='')}"
            raise GatewayError(302, "login_required", "Sign in first", headers={"Location": location}) from None
        raise
    csrf_check(method=method, token=token, headers=conn.headers, cookies=conn.cookies)
    return claims
