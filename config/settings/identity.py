"""Identity: users, memberships, roles, tokens and signing keys."""

from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_str
from config.settings.base import *  # noqa: F403
from config.settings.base import (
    ADMIN_APPS,
    CELERY_BEAT_SCHEDULE,
    DEBUG,
    DRF_APPS,
    INSTALLED_APPS,
    JWT_AUDIENCE,
    JWT_ISSUER,
    MIDDLEWARE,
    REDIS_URL,
    SESSION_MIDDLEWARE,
    beat_every,
    database_for,
    drf_settings,
)

SERVICE_NAME = "identity"
ROOT_URLCONF = "config.urls.identity"
DATABASES = {"default": database_for("identity")}
READINESS_CHECKS = ["database", "cache", "broker"]

INSTALLED_APPS = [
    *ADMIN_APPS,
    *INSTALLED_APPS,
    *DRF_APPS,
    "apps.events",
    "apps.identity",
]
MIDDLEWARE = [*MIDDLEWARE, *SESSION_MIDDLEWARE]
AUTH_USER_MODEL = "identity.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Tests only: the identity servers a test suite starts hash with MD5 first, so each sign-up and
# sign-in there does not pay for Argon2 (in-process tests get the same from tests/conftest.py).
if env_bool("PASSWORD_HASHER_FAST_FOR_TESTS", False):
    if not DEBUG:
        raise ImproperlyConfigured("PASSWORD_HASHER_FAST_FOR_TESTS is for test servers; it needs DJANGO_DEBUG")
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]

REST_FRAMEWORK, SPECTACULAR_SETTINGS = drf_settings("Identity")

# The identity service's own pieces below; only it needs them.

REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "apps.identity.openapi.IdentitySchema"

# Tokens (CONTRACT.md). Refresh tokens carry their own audience so no access-token verifier accepts one.
JWT_REFRESH_AUDIENCE = env_str("JWT_REFRESH_AUDIENCE", "kanban-identity-refresh")
JWT_ACCESS_LIFETIME = timedelta(seconds=env_int("JWT_ACCESS_LIFETIME_SECONDS", 15 * 60))
JWT_REFRESH_LIFETIME = timedelta(seconds=env_int("JWT_REFRESH_LIFETIME_SECONDS", 14 * 24 * 3600))
# Celery beat (beat-identity): refresh tokens past their expiry are deleted, hourly.
REFRESH_TOKENS_PURGE_SECONDS = env_int("REFRESH_TOKENS_PURGE_SECONDS", 3600)
CELERY_BEAT_SCHEDULE = {
    **CELERY_BEAT_SCHEDULE,
    "refresh-tokens-purge": beat_every("apps.identity.tasks.refresh_tokens_purge", REFRESH_TOKENS_PURGE_SECONDS),
}
JWT_LEEWAY = env_int("JWT_LEEWAY_SECONDS", 0)
# Identity verifies its own tokens from its database rather than over HTTP.
JWT_PUBLIC_KEY_RESOLVER = "apps.identity.selectors.public_key_for_kid"
SIMPLE_JWT = {
    "ALGORITHM": "RS256",
    "USER_ID_CLAIM": "sub",
    "USER_ID_FIELD": "id",
    "ACCESS_TOKEN_LIFETIME": JWT_ACCESS_LIFETIME,
    "REFRESH_TOKEN_LIFETIME": JWT_REFRESH_LIFETIME,
    "AUDIENCE": JWT_AUDIENCE,
    "ISSUER": JWT_ISSUER,
    "SIGNING_KEY": None,
}

# Failed sign-ins (apps/identity/throttling.py).
LOGIN_THROTTLE_REDIS_URL = env_str("LOGIN_THROTTLE_REDIS_URL", REDIS_URL)
LOGIN_THROTTLE_PREFIX = env_str("LOGIN_THROTTLE_PREFIX", "identity:login-failures")
LOGIN_THROTTLE_WINDOW = env_int("LOGIN_THROTTLE_WINDOW", 60)
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", 5)
LOGIN_FAILURES_PER_IP = env_int("LOGIN_FAILURES_PER_IP", 20)

AUTH_PASSWORD_VALIDATORS = [
    # Not like the address or the person's name (Django's default attributes name neither field of ours).
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "full_name")},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "apps.identity.passwords.NotOnlyWhitespaceValidator"},
]

# Links in mail. Mail itself goes through the SMTP settings in base.py.
APEX_URL = env_str("APEX_URL", "http://localhost:8000")
TENANT_URL_TEMPLATE = env_str("TENANT_URL_TEMPLATE", "http://{slug}.localhost:8000")
INVITATION_LIFETIME = timedelta(days=env_int("INVITATION_LIFETIME_DAYS", 7))
# An invitation's link is mailed again (a new token) at most this often.
INVITATION_RESEND_INTERVAL = timedelta(seconds=env_int("INVITATION_RESEND_INTERVAL_SECONDS", 60))
# Email verification (apps/identity/verification.py): how long a link works; resends per account.
EMAIL_VERIFICATION_LIFETIME = timedelta(hours=env_int("EMAIL_VERIFICATION_LIFETIME_HOURS", 48))
VERIFICATION_MAIL_INTERVAL = env_int("VERIFICATION_MAIL_INTERVAL_SECONDS", 60)
# Lets scripts and e2e tests accept an invitation without reading mail; off in production.
INVITATION_LINK_IN_RESPONSE = env_bool("INVITATION_LINK_IN_RESPONSE", DEBUG)

# Browser sessions: cookies are Secure outside development.
LOGIN_URL = "/login"
LOGIN_REDIRECT_URL = "/projects/"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
AUTH_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_SAMESITE = "Lax"
