"""simplejwt's token classes, signed by identity's key ring instead of one static key.

simplejwt's TokenBackend signs with a single configured key and writes no `kid`; the
backend below keeps its interface (encode/decode, same errors) but signs with the current
SigningKey, names it in the header, and verifies with whichever key the header names.
Refresh tokens carry a different audience, so no verifier of access tokens accepts one.
"""

from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken
from rest_framework_simplejwt.tokens import AccessToken, Token

from apps.identity import selectors
from apps.identity.keyring import signing_key_ensure
from apps.identity.keys import private_key_from_pem, public_key_from_pem

ALGORITHM = "RS256"


class KeyRingTokenBackend(TokenBackend):
    def __init__(self, *, audience: str) -> None:
        super().__init__(ALGORITHM, audience=audience, issuer=settings.JWT_ISSUER, leeway=settings.JWT_LEEWAY)

    def encode(self, payload: dict[str, Any]) -> str:
        key = signing_key_ensure()
        claims = {**payload, "aud": self.audience, "iss": self.issuer}
        return jwt.encode(
            claims, private_key_from_pem(key.private_key_pem), algorithm=ALGORITHM, headers={"kid": key.kid}
        )

    def decode(self, token: Any, verify: bool = True) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise TokenBackendError("Token is invalid") from exc
        if header.get("alg") != ALGORITHM:
            raise TokenBackendError("Invalid algorithm specified")
        key = selectors.verification_key_get(kid=str(header.get("kid") or ""))
        if key is None:
            raise TokenBackendError("Token is signed with an unknown key")
        try:
            return jwt.decode(
                token,
                public_key_from_pem(key.public_key_pem),
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.get_leeway(),
                options={"verify_signature": verify, "require": ["exp", "iat", "jti", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenBackendExpiredToken("Token is expired") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenBackendError("Token is invalid") from exc


class PlatformAccessToken(AccessToken):
    lifetime = settings.JWT_ACCESS_LIFETIME
    _token_backend = KeyRingTokenBackend(audience=settings.JWT_AUDIENCE)


class PlatformRefreshToken(Token):
    token_type = "refresh"  # noqa: S105 - a claim value, not a secret
    lifetime = settings.JWT_REFRESH_LIFETIME
    _token_backend = KeyRingTokenBackend(audience=settings.JWT_REFRESH_AUDIENCE)


@dataclass(frozen=True)
class TokenPair:
    """What a sign-in or a refresh hands out (services.token_pair_issue)."""

    access: str
    refresh: str
    expires_in: int
    refresh_expires_in: int

    def as_dict(self) -> dict:
        return {"access": self.access, "refresh": self.refresh, "token_type": "Bearer", "expires_in": self.expires_in}


@dataclass(frozen=True)
class PresentedAccess:
    user_id: str
    session_id: str | None
    jti: str
    expires_at: int


def access_token_presented(raw_token: str) -> PresentedAccess | None:
    """An access token signed by us, expired or not: enough to end it and its session at logout."""
    try:
        header = jwt.get_unverified_header(raw_token)
        key = selectors.verification_key_get(kid=str(header.get("kid") or ""))
        if key is None or header.get("alg") != ALGORITHM:
            return None
        payload = jwt.decode(
            raw_token,
            public_key_from_pem(key.public_key_pem),
            algorithms=[ALGORITHM],
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            options={"verify_exp": False},
        )
    except jwt.InvalidTokenError:
        return None
    if not isinstance(payload.get("sub"), str) or not isinstance(payload.get("jti"), str):
        return None
    if not isinstance(payload.get("exp"), int):
        return None
    session = payload.get("sid") if isinstance(payload.get("sid"), str) else None
    return PresentedAccess(user_id=payload["sub"], session_id=session, jti=payload["jti"], expires_at=payload["exp"])
