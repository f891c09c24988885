"""Tenancy: tenants, domains, placements, provisioning state and schema versions."""

from config.env import env_float
from config.settings.base import *  # noqa: F403
from config.settings.base import INSTALLED_APPS, MIDDLEWARE, database_for

SERVICE_NAME = "tenancy"
ROOT_URLCONF = "config.urls.tenancy"
DATABASES = {"default": database_for("tenancy")}
READINESS_CHECKS = ["database", "cache", "broker"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    *INSTALLED_APPS,
    "rest_framework",
    "drf_spectacular",
    "apps.events",
    "apps.tenancy",
]
MIDDLEWARE = [
    *MIDDLEWARE,
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.common.drf.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {"TITLE": "Tenancy", "VERSION": "1.0.0", "SERVE_INCLUDE_SCHEMA": False}

# Service-to-service calls (identity's /internal/tenant-owners at signup).
IDENTITY_TIMEOUT = env_float("IDENTITY_TIMEOUT", 10.0)
