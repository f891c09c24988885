"""Verifying the platform's access tokens inside a service, behind the gateway (defense in depth).

Identity signs access tokens with RS256 and names the key in the header's `kid`. A service
verifies them against identity's JWKS (`{SERVICE_URLS["identity"]}/.well-known/jwks.json`),
fetched once and cached; an unknown `kid` refetches it, at most every JWKS_MIN_REFETCH
seconds, so a flood of made-up kids cannot turn into a flood of requests to identity.
Identity itself resolves keys from its own database (settings.JWT_PUBLIC_KEY_RESOLVER).

    claims = verify_access_token(token, tenant_id=request.headers["X-Tenant-ID"])

A signed-out token is refused until it expires: identity writes `revoked-jti:<jti>` in the
Redis DB of settings.REDIS_URL on logout, password change and address takeover (CONTRACT:
revoked access tokens), and every verification here looks for it.

Entry points: `verify_access_token`, `JWTAuthentication` (DRF), `NinjaJWTAuth` (Ninja),
`authenticate_websocket` (Channels).
"""

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.module_loading import import_string
from jwt.algorithms import RSAAlgorithm
from ninja.errors import HttpError
from ninja.security.base import AuthBase
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, CSRFCheck

logger = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("RS256",)
REVOKED_JTI_PREFIX = "revoked-jti:"
ACCESS_COOKIE = "access_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


@dataclass(frozen=True)
class Claims:
    """A verified access token."""

    user_id: str
    tenant_id: str
    roles: tuple[str, ...]
    permissions: frozenset[str]
    jti: str
    issued_at: int
    expires_at: int
    session_id: str | None = None

    def has_permission(self, code: str) -> bool:
        return code in self.permissions


class InvalidToken(Exception):
    """The token is not one this service accepts. `code` goes into the JSON error."""

    code = "invalid_token"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class WrongTenant(InvalidToken):
    code = "wrong_tenant"


class JwksCache:
    """identity's public keys by kid, fetched over HTTP and kept for JWKS_CACHE_TTL seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._attempted_at = float("-inf")

    def clear(self) -> None:
        with self._lock:
            self._keys, self._fetched_at, self._attempted_at = {}, 0.0, float("-inf")

    def key_for(self, kid: str) -> Any | None:
        with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at > _setting("JWKS_CACHE_TTL", 300)
            unknown = kid not in self._keys
            may_fetch = now - self._attempted_at >= _setting("JWKS_MIN_REFETCH", 5)
            if (stale or unknown) and may_fetch:
                self._attempted_at = now
                self._refresh()
            return self._keys.get(kid)

    def _refresh(self) -> None:
        url = f"{settings.SERVICE_URLS['identity'].rstrip('/')}/.well-known/jwks.json"
        try:
            response = httpx.get(url, timeout=_setting("JWKS_FETCH_TIMEOUT", 3.0))
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError):
            return  # keep serving the keys we have; an unknown kid is refused below
        keys: dict[str, Any] = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not jwk.get("kid"):
                continue
            try:
                keys[str(jwk["kid"])] = RSAAlgorithm.from_jwk(jwk)
            except (jwt.InvalidKeyError, KeyError, ValueError):
                continue
        self._keys = keys
        self._fetched_at = time.monotonic()


jwks_cache = JwksCache()


def public_key_for_kid(kid: str) -> Any | None:
    resolver = _setting("JWT_PUBLIC_KEY_RESOLVER", None)
    if resolver:
        return import_string(resolver)(kid)
    return jwks_cache.key_for(kid)


def revoked_jti_key(jti: str) -> str:
    return f"{REVOKED_JTI_PREFIX}{jti}"


@functools.lru_cache(maxsize=4)
@functools.lru_cache(maxsize=8)
def revocation_redis(url: str) -> redis.Redis:
    """The Redis that holds revoked jtis (the gateway reads the same DB): one client per process.

    Every request checks it, so a client (and a TCP connection) per call cost a connect on each
    request and a burst of connections whenever the open board sockets re-checked together
    (docs/benchmarks.md, live fan-out). redis-py's pool is thread-safe and resets itself after a fork.
    """
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def jti_is_revoked(jti: str) -> bool:
    try:
        return bool(revocation_redis(settings.REDIS_URL).exists(revoked_jti_key(jti)))
    except redis.RedisError:
        # Fail open, loudly: with Redis down a signed-out token lives at most until its `exp`
        # (15 minutes), which is what it did before revocation existed; refusing every request
        # instead would turn a Redis outage into a platform outage.
        logger.warning("revoked-jti check unavailable; accepting the token", exc_info=True)
        return False


def _string_list(value: object, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidToken(f"Token claim {name} must be a list of strings")
    return value


def verify_access_token(token: str, *, tenant_id: str | uuid.UUID | None) -> Claims:
    """The token's claims, if identity signed it for this tenant and it has not expired; else InvalidToken."""
    if not isinstance(token, str) or not token:
        raise InvalidToken("A token is required")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise InvalidToken("Token is malformed") from None
    # Pin the algorithm before looking at the key: refuses `alg: none` and HS256-signed-with-the-public-key.
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise InvalidToken("Token signing algorithm is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidToken("Token names no signing key")
    key = public_key_for_kid(kid)
    if key is None:
        raise InvalidToken("Token is signed with an unknown key")
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=list(ALLOWED_ALGORITHMS),
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            leeway=_setting("JWT_LEEWAY", 0),
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("Token has expired", code="token_expired") from None
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"Token is invalid: {exc}") from None
    if payload.get("token_type", "access") != "access":
        raise InvalidToken("Token is not an access token")
    token_tenant = payload.get("tenantId")
    if not isinstance(token_tenant, str):
        raise InvalidToken("Token has no tenant")
    if tenant_id is None or str(tenant_id) != token_tenant:
        raise WrongTenant("Token belongs to another organization")
    if jti_is_revoked(str(payload["jti"])):
        raise InvalidToken("Token was revoked (signed out)", code="token_revoked")
    return Claims(
        user_id=str(payload["sub"]),
        tenant_id=token_tenant,
        roles=tuple(_string_list(payload.get("roles", []), "roles")),
        permissions=frozenset(_string_list(payload.get("permissions", []), "permissions")),
        jti=str(payload["jti"]),
        issued_at=int(payload["iat"]),
        expires_at=int(payload["exp"]),
        session_id=payload.get("sid") if isinstance(payload.get("sid"), str) else None,
    )


def tenant_id_from_request(request: HttpRequest) -> str | None:
    """The tenant the gateway resolved from the host (it strips any X-Tenant-ID a client sends)."""
    raw = request.headers.get("X-Tenant-ID", "")
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def token_from_request(request: HttpRequest) -> tuple[str | None, bool]:
    """(token, came_from_cookie). The Authorization header wins over the cookie."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), False
    cookie = request.COOKIES.get(ACCESS_COOKIE)
    return (cookie, True) if cookie else (None, False)


def csrf_failure(request: HttpRequest) -> str | None:
    """Django's CSRF check for a cookie-authenticated unsafe request; the reason, or None when it passes."""
    if request.method in _SAFE_METHODS:
        return None
    check = CSRFCheck(lambda _request: None)  # type: ignore[arg-type]
    check.process_request(request)
    # DRF's CSRFCheck answers its _reject() reason (a str), not the response the stubs promise.
    return check.process_view(request, None, (), {})  # type: ignore[arg-type,return-value]


class TokenPrincipal:
    """request.user for a token-authenticated request: who, in which tenant, allowed to do what."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, claims: Claims) -> None:
        self.claims = claims
        self.id = self.pk = claims.user_id
        self.tenant_id = claims.tenant_id

    def has_permission(self, code: str) -> bool:
        return self.claims.has_permission(code)

    @cached_property
    def roles(self) -> tuple[str, ...]:
        return self.claims.roles

    def __str__(self) -> str:
        return f"user {self.id} in {self.tenant_id}"


class JWTAuthentication(BaseAuthentication):
    """DRF: Bearer header or `access_token` cookie; cookie-authenticated writes must pass CSRF."""

    def authenticate(self, request: Any) -> tuple[TokenPrincipal, Claims] | None:
        token, from_cookie = token_from_request(request)
        if token is None:
            return None
        if from_cookie:
            reason = csrf_failure(request._request)
            if reason:
                raise exceptions.PermissionDenied(f"CSRF check failed: {reason}", code="csrf_failed")
        try:
            claims = verify_access_token(token, tenant_id=tenant_id_from_request(request))
        except WrongTenant as exc:
            raise exceptions.PermissionDenied(exc.message, code=exc.code) from None
        except InvalidToken as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from None
        return TokenPrincipal(claims), claims

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="kanban"'


class NinjaJWTAuth(AuthBase):
    """Ninja: pass as `auth=NinjaJWTAuth()`. request.auth becomes the TokenPrincipal."""

    openapi_type = "http"
    openapi_scheme = "bearer"
    openapi_bearerFormat = "JWT"

    def __call__(self, request: HttpRequest) -> TokenPrincipal | None:
        token, from_cookie = token_from_request(request)
        if token is None:
            return None
        if from_cookie and csrf_failure(request):
            raise HttpError(403, "CSRF check failed")
        try:
            claims = verify_access_token(token, tenant_id=tenant_id_from_request(request))
        except WrongTenant as exc:
            raise HttpError(403, exc.message) from None
        except InvalidToken as exc:
            # Say why (expired, revoked, malformed), as the DRF services and the gateway do.
            refused = HttpError(401, exc.message)
            refused.code = exc.code  # type: ignore[attr-defined]
            raise refused from None
        request.claims = claims  # type: ignore[attr-defined]
        return TokenPrincipal(claims)


def _scope_headers(scope: dict) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _subprotocols(header: str) -> list[str]:
    return [item.strip() for item in header.split(",") if item.strip()]


def websocket_token(scope: dict) -> tuple[str | None, str | None]:
    """(token, subprotocol to accept with). `Sec-WebSocket-Protocol: bearer, <token>` wins over the cookie."""
    headers = _scope_headers(scope)
    protocols = _subprotocols(headers.get("sec-websocket-protocol", ""))
    if len(protocols) >= 2 and protocols[0].lower() == "bearer":
        return protocols[1], protocols[0]
    return _cookie(headers.get("cookie", ""), ACCESS_COOKIE), None


def _same_origin(headers: dict[str, str]) -> bool:
    # A cookie travels with cross-site WebSocket handshakes too; only our own pages may use it.
    origin, host = headers.get("origin", ""), headers.get("x-forwarded-host") or headers.get("host", "")
    return bool(origin) and httpx.URL(origin).netloc.decode() == host


def authenticate_scope(scope: dict) -> tuple[Claims, str | None]:
    """Channels: the claims of a WebSocket handshake and the subprotocol to accept; InvalidToken if refused."""
    headers = _scope_headers(scope)
    token, subprotocol = websocket_token(scope)
    if token is None:
        raise InvalidToken("A token is required")
    if subprotocol is None and not _same_origin(headers):
        raise InvalidToken("Cookie authentication needs a same-origin WebSocket", code="bad_origin")
    raw_tenant = headers.get("x-tenant-id", "")
    try:
        tenant_id = str(uuid.UUID(raw_tenant))
    except ValueError:
        tenant_id = None
    return verify_access_token(token, tenant_id=tenant_id), subprotocol


authenticate_websocket: Callable[[dict], Any] = sync_to_async(authenticate_scope, thread_sensitive=False)
"""`claims, subprotocol = await authenticate_websocket(scope)` inside an async consumer's connect()."""


def require_permissions(claims: Claims, codes: Iterable[str]) -> None:
    missing = sorted(set(codes) - claims.permissions)
    if missing:
        raise exceptions.PermissionDenied(f"Missing permission: {', '.join(missing)}", code="forbidden")
