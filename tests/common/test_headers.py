"""Security headers and cookie settings every service shares (config/settings/base.py)."""

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/healthz", "/login", "/api/nowhere", "/admin/login/"])
def test_every_response_carries_the_security_headers(client: Client, path) -> None:
    response = client.get(path, HTTP_ACCEPT="text/html")

    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert directives["object-src"] == "'none'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_cookies_are_host_only_and_lax_and_the_session_httponly() -> None:
    # The CSRF cookie stays readable: board.js sends it in X-CSRFToken, which the gateway compares with it.
    assert settings.SESSION_COOKIE_HTTPONLY and not settings.CSRF_COOKIE_HTTPONLY
    assert settings.CSRF_COOKIE_DOMAIN is None and settings.SESSION_COOKIE_DOMAIN is None
    assert settings.CSRF_COOKIE_SAMESITE == settings.SESSION_COOKIE_SAMESITE == "Lax"


def test_the_login_page_sets_a_host_only_lax_csrf_cookie(client: Client) -> None:
    response = client.get("/login")

    cookie = response.cookies[settings.CSRF_COOKIE_NAME]
    assert cookie["domain"] == ""
    assert cookie["samesite"] == "Lax"


def test_production_settings_make_cookies_secure_and_host_prefixed(tmp_path) -> None:
    import subprocess
    import sys

    code = (
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, settings.CSRF_COOKIE_NAME, "
        "settings.SESSION_COOKIE_NAME, settings.SECURE_HSTS_SECONDS > 0)"
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.tenancy",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "x" * 50,
        "INTERNAL_API_TOKEN": "y" * 40,
        "SHARE_GRANT_SECRET": "z" * 40,
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "True", "csrftoken", "__Host-sessionid", "True"]
