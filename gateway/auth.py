"""Who is calling: the access JWT, checked against identity's JWKS, and CSRF for cookies.

Keys are cached; an unknown `kid` (identity rotated its key) triggers one shared,
rate-limited refetch that requests await asynchronously, so a forged `kid` cannot make
the gateway hammer identity and nothing ever blocks the event loop.
The algorithm comes from the key's type, never from the token's header, which closes
`alg: none` and the HS256-signed-with-the-public-key confusion.
"""

import asyncio
import contextlib
import hmac
import logging
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import aiohttp
import jwt
from jwt.exceptions import PyJWKError, PyJWTError

from gateway.config import GatewaySettings
from gateway.errors import GatewayError

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# (methods or None for any, path pattern): reachable without a token.
PUBLIC_PATHS: tuple[tuple[frozenset[str] | None, re.Pattern[str]], ...] = tuple(
    (frozenset(methods) if methods else None, re.compile(pattern))
    for methods, pattern in (
        (None, r"/healthz"),
        (None, r"/readyz"),
        (None, r"/api/docs(/.*)?"),
        (None, r"/api/openapi\.json"),
        (None, r"/\.well-known/jwks\.json"),
        (None, r"/api/auth/token/?"),
        (None, r"/api/auth/refresh/?"),
        (("GET",), r"/api/auth/resume/?"),
        # The link in a verification mail is the caller's only credential (identity checks it).
        (("POST",), r"/api/auth/verify-email(/resend)?/?"),
        # Accepting an invitation: the link's token, plus the account's password for an existing account.
        (("POST",), r"/api/users/invitations/accept/?"),
        # Logging out only revokes what the caller presents, and must work with an expired access token.
        (None, r"/api/auth/logout/?"),
        (None, r"/login(/.*)?"),
        (None, r"/logout(/.*)?"),
        (None, r"/s/.*"),
        # A shared task's read-only view and its live updates: authorised by their own signed cookie
        # (the projects service checks the grant a short link hands out, docs/projects.md).
        (None, r"/shared(/.*)?"),
        (None, r"/ws/shared/.*"),
        (None, r"/static/.*"),
        (("POST",), r"/api/tenants/?"),
        (("GET", "HEAD"), r"/api/tenants/[^/]+/?"),
        # The apex's landing page, its signup form and the new organization's status page.
        (("GET", "HEAD"), r"/"),
        (None, r"/signup(/.*)?"),
        # Django admin runs its own session authentication.
        (None, r"/admin(/.*)?"),
    )
)

_KEY_ALGORITHMS = {"RSA": "RS256", "OKP": "EdDSA"}


def path_is_public(method: str, path: str) -> bool:
    if method == "OPTIONS":  # CORS preflights carry no credentials by design
        return True
    return _public_pattern(method).fullmatch(path) is not None


@lru_cache(maxsize=16)
def _public_pattern(method: str) -> re.Pattern[str]:
    """One alternation of the public patterns for `method` (one match per request, not seventeen)."""
    patterns = [pattern.pattern for methods, pattern in PUBLIC_PATHS if methods is None or method in methods]
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns) or "(?!)")


@dataclass(frozen=True, slots=True)
class PresentedToken:
    value: str
    source: str  # "header", "cookie" or "subprotocol"


def token_from(
    *, headers: Any, cookies: dict[str, str], subprotocols: list[str] | None = None
) -> PresentedToken | None:
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return PresentedToken(credentials.strip(), "header")
    if subprotocols:
        offered = [protocol.strip() for protocol in subprotocols]
        if "bearer" in offered:
            position = offered.index("bearer")
            if position + 1 < len(offered) and offered[position + 1]:
                return PresentedToken(offered[position + 1], "subprotocol")
    if cookies.get("access_token"):
        return PresentedToken(cookies["access_token"], "cookie")
    return None


def csrf_check(*, method: str, token: PresentedToken, headers: Any, cookies: dict[str, str]) -> None:
    """A cookie is sent by the browser on its own; an unsafe request must prove it came from our pages."""
    if token.source != "cookie" or method in SAFE_METHODS:
        return
    expected = cookies.get("csrftoken", "")
    presented = headers.get("x-csrftoken", "")
    if not expected or not hmac.compare_digest(expected.encode(), presented.encode()):
        raise GatewayError(403, "csrf_failed", "Send the csrftoken cookie's value in the X-CSRFToken header")


JWKS_RETRY_AFTER_FAILURE = 1.0  # seconds
JWKS_FETCH_TIMEOUT = 5.0


class JwksCache:
    def __init__(self, *, settings: GatewaySettings, client: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._client = client
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        # When an unknown kid may next refetch: `jwks_refetch_interval` after a fetch that worked, so
        # forged kids cannot hammer identity; soon after one that failed (identity still starting,
        # or making its first key), so a fresh stack does not refuse its first tokens for that long.
        self._next_fetch_at = float("-inf")
        self._refresh: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"{self._settings.service_url('identity')}/.well-known/jwks.json"

    def refresh_start(self) -> asyncio.Task[None]:
        """Start a refetch unless one is running; callers share the same task."""
        if self._refresh is None or self._refresh.done():
            self._next_fetch_at = time.monotonic() + self._settings.jwks_refetch_interval
            self._refresh = asyncio.create_task(self._fetch(), name="jwks-refresh")
        return self._refresh

    async def aclose(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh

    async def _fetch(self) -> None:
        try:
            async with self._client.get(
                self.url,
                headers={"Accept": "application/json"},
                # Identity's first answer may wait for it to generate its first key pair.
                timeout=aiohttp.ClientTimeout(total=max(self._settings.health_timeout, JWKS_FETCH_TIMEOUT)),
            ) as response:
                response.raise_for_status()
                keys = self._parse(await response.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            logger.error("could not fetch identity's JWKS from %s: %r", self.url, error)
            self._next_fetch_at = time.monotonic() + min(JWKS_RETRY_AFTER_FAILURE, self._settings.jwks_refetch_interval)
            return
        self._keys = keys
        self._fetched_at = time.monotonic()
        logger.info("fetched %d signing key(s) from identity", len(keys))

    @staticmethod
    def _parse(document: dict) -> dict[str, jwt.PyJWK]:
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            algorithm = _KEY_ALGORITHMS.get(entry.get("kty"))
            kid = entry.get("kid")
            if algorithm is None or not isinstance(kid, str) or entry.get("use", "sig") != "sig":
                continue
            if algorithm == "EdDSA" and entry.get("crv") not in ("Ed25519", "Ed448"):
                continue
            try:
                keys[kid] = jwt.PyJWK(entry, algorithm=algorithm)
            except PyJWKError:
                logger.warning("skipping unusable signing key %s", kid)
        return keys

    def has_key(self, kid: str) -> bool:
        return kid in self._keys

    async def key_for(self, kid: str) -> jwt.PyJWK | None:
        now = time.monotonic()
        key = self._keys.get(kid)
        if key is not None:
            if now - self._fetched_at > self._settings.jwks_cache_ttl:
                self.refresh_start()  # serve the cached key meanwhile
            return key
        running = self._refresh is not None and not self._refresh.done()
        if not running and now < self._next_fetch_at:
            return None
        refresh = self.refresh_start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(refresh), timeout=self._settings.health_timeout)
        return self._keys.get(kid)


def _invalid(message: str) -> GatewayError:
    return GatewayError(401, "invalid_token", message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class VerifiedTokens:
    """Claims of tokens whose signature was already checked, so a token's next request skips it.

    An RS256 check costs about 150 us here, most of the gateway's budget per request. An entry
    is keyed by the whole token, is used only while the token is unexpired and its key is still
    in the JWKS (a key identity withdraws ends its tokens at the next refresh), and lives at most
    `MAX_AGE` seconds. The cache is bounded; when full it starts over.
    """

    MAX_ENTRIES = 50_000
    MAX_AGE = 300.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, str, dict]] = {}

    def get(self, token: str, *, jwks: JwksCache, leeway: int) -> dict | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        until, kid, claims = entry
        if time.time() > until or not jwks.has_key(kid):
            del self._entries[token]
            return None
        return claims

    def put(self, token: str, *, kid: str, claims: dict, leeway: int) -> None:
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        until = min(float(claims["exp"]) + leeway, time.time() + self.MAX_AGE)
        self._entries[token] = (until, kid, claims)


async def token_claims(
    *, token: str, jwks: JwksCache, settings: GatewaySettings, verified: VerifiedTokens | None = None
) -> dict:
    """The token's claims if identity signed it for this platform (any tenant: see `token_tenant_check`)."""
    if verified is not None:
        claims = verified.get(token, jwks=jwks, leeway=settings.jwt_leeway)
        if claims is not None:
            return claims
    try:
        header = jwt.get_unverified_header(token)
    except PyJWTError:
        raise _invalid("The access token is malformed") from None
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _invalid("The access token names no signing key")
    key = await jwks.key_for(kid)
    if key is None:
        raise _invalid("The access token was signed by an unknown key")
    if header.get("alg") != key.algorithm_name:
        raise _invalid("The access token's algorithm does not match its key")
    try:
        claims = jwt.decode(
            token,
            key=key.key,
            algorithms=[key.algorithm_name],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway,
            # jti: without it a token could not be revoked at logout.
            options={"require": ["exp", "iss", "aud", "sub", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise _invalid("The access token has expired") from None
    except PyJWTError as error:
        raise _invalid(f"The access token is not valid: {error}") from None
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise _invalid("The access token has no usable jti")
    if verified is not None:
        verified.put(token, kid=kid, claims=claims, leeway=settings.jwt_leeway)
    return claims


def token_tenant_check(claims: dict, *, tenant_id: str | None) -> None:
    token_tenant = claims.get("tenantId")
    if (str(token_tenant) if token_tenant is not None else None) != tenant_id:
        raise GatewayError(403, "wrong_tenant", "This token belongs to another organization")


def token_revoked() -> GatewayError:
    return GatewayError(
        401,
        "token_revoked",
        "This access token was revoked (signed out); sign in again",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )
