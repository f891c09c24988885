"""The auth cookies a browser holds, and the request's tenant: shared by the API (api.py) and the pages (views.py).

The access cookie's name is apps.common.auth's, which every service reads it by.
"""

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from apps.common.auth import ACCESS_COOKIE, tenant_id_from_request
from apps.common.exceptions import InvalidInput
from apps.identity.tokens import TokenPair

__all__ = ["ACCESS_COOKIE", "REFRESH_COOKIE", "clear_auth_cookies", "request_tenant", "set_auth_cookies"]

REFRESH_COOKIE = "refresh_token"


def request_tenant(request: HttpRequest) -> str:
    """The tenant the gateway resolved, or a 400 `tenant_required` (the apex names none)."""
    tenant_id = tenant_id_from_request(request)
    if tenant_id is None:
        raise InvalidInput(
            "Use your organization's address: the request names no tenant (X-Tenant-ID)", code="tenant_required"
        )
    return tenant_id


def set_auth_cookies(response: Any, pair: TokenPair) -> None:
    secure = settings.AUTH_COOKIE_SECURE
    response.set_cookie(
        ACCESS_COOKIE, pair.access, max_age=pair.expires_in, httponly=True, samesite="Lax", secure=secure, path="/"
    )
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh,
        max_age=pair.refresh_expires_in,
        httponly=True,
        samesite="Strict",
        secure=secure,
        path="/api/auth",
    )


def clear_auth_cookies(response: Any) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/", samesite="Lax")
    response.delete_cookie(REFRESH_COOKIE, path="/api/auth", samesite="Strict")
