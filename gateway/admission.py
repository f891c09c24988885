"""Whether a request may pass, decided in one order for HTTP and WebSocket alike, on the one
normalized path (gateway/paths.py) and the one client IP (gateway/clientip.py):

route -> token signature (CPU only, cached per token) -> one Redis round trip for the per-IP,
login/signup and per-user limits and the revoked-jti key -> tenant of the host -> the token's
tenant, revocation and CSRF.

Limits are decided before the tenant lookup, so floods are refused before they cost one; a
refused limit answers 429 even when the token is bad, so bad tokens count against the IP too.
"""

from dataclasses import dataclass
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from gateway.auth import (
    JwksCache,
    PresentedToken,
    VerifiedTokens,
    csrf_check,
    path_is_public,
    token_claims,
    token_from,
    token_revoked,
    token_tenant_check,
)
from gateway.config import GatewaySettings
from gateway.errors import GatewayError
from gateway.ratelimit import Policy, RateLimiter
from gateway.routing import Route, route_match, route_service
from gateway.tenants import Tenant, TenantDirectory, host_tenant_slug, tenant_require_active


@dataclass(frozen=True, slots=True)
class Admission:
    route: Route
    service: str
    tenant: Tenant | None
    claims: dict | None


def cookies_parse(headers: Headers) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for value in headers.getlist("cookie"):
        cookies.update(cookie_parser(value))
    return cookies


@dataclass(slots=True)
class Gate:
    """The gateway's admission, with the objects it consults; one per app."""

    settings: GatewaySettings
    tenants: TenantDirectory
    jwks: JwksCache
    limiter: RateLimiter
    verified: VerifiedTokens

    async def admit(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Headers,
        client_ip: str,
        state: dict,
        subprotocols: list[str] | None = None,
    ) -> Admission:
        route = route_match(path)
        if route is None:
            raise GatewayError(404, "not_found", f"No route for {path}")
        slug = host_tenant_slug(headers.get("host", ""), base_domain=self.settings.base_domain)
        if route_service(route, on_tenant_host=slug is not None) is None:
            # Served on the other kind of host only (the apex's landing page `/`): not routed here.
            raise GatewayError(404, "not_found", f"No route for {path} on this host")

        claims: dict | None = None
        token: PresentedToken | None = None
        token_error: GatewayError | None = None
        cookies = _LazyCookies(headers)
        public = path_is_public(method, path)
        if not public:
            token = token_from(headers=headers, cookies=cookies, subprotocols=subprotocols)
            if token is None:
                token_error = GatewayError(
                    401,
                    "invalid_token",
                    "Sign in: send an access token (Authorization: Bearer, or the access_token cookie)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            else:
                try:
                    claims = await token_claims(
                        token=token.value, jwks=self.jwks, settings=self.settings, verified=self.verified
                    )
                except GatewayError as error:
                    token_error = error

        checks: list[tuple[Policy, str]] = [
            (policy, client_ip) for policy in self.limiter.policies_for(method=method, path=path)
        ]
        if claims is not None:
            checks.append((self.limiter.per_user, str(claims["sub"])))
        decision = await self.limiter.admit(checks, jti=claims["jti"] if claims is not None else None)

        tenant = None
        if slug is not None:
            state["tenant_slug"] = slug
            tenant = await self.tenants.tenant_get(slug=slug)
            tenant_require_active(tenant, retry_after=self.settings.tenant_retry_after)
        service = route_service(route, on_tenant_host=tenant is not None)
        assert service is not None  # checked against the host above
        state["service"] = service

        if not public:
            try:
                if token_error is not None:
                    raise token_error
                assert claims is not None and token is not None
                token_tenant_check(claims, tenant_id=tenant.id if tenant else None)
                if decision.revoked:
                    raise token_revoked()
            except GatewayError as error:
                if route.page and error.status == 401 and method == "GET" and "text/html" in headers.get("accept", ""):
                    # A browser opening a page is better served by a page than by JSON: identity renews
                    # an expired session from its refresh cookie, or shows the login form.
                    target = path + (f"?{query}" if query else "")
                    location = f"/api/auth/resume?next={quote(target, safe='')}"
                    raise GatewayError(302, "login_required", "Sign in first", headers={"Location": location}) from None
                raise
            csrf_check(method=method, token=token, headers=headers, cookies=cookies)
            state["user_id"] = str(claims["sub"])
        return Admission(route=route, service=service, tenant=tenant, claims=claims)


class _LazyCookies(dict):
    """Cookies parsed only if a token is looked for there (most API calls carry a bearer header)."""

    def __init__(self, headers: Headers) -> None:
        super().__init__()
        self._headers = headers
        self._parsed = False

    def _parse(self) -> None:
        if not self._parsed:
            self._parsed = True
            self.update(cookies_parse(self._headers))

    def get(self, key: str, default: object = None) -> object:
        self._parse()
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self._parse()
        return super().__getitem__(key)
