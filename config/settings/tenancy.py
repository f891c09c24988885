"""Tenancy: tenants, domains, placements, provisioning state and schema versions."""

from config.env import env_float
from config.settings.base import *  # noqa: F403
from config.settings.base import (
    ADMIN_APPS,
    DRF_APPS,
    INSTALLED_APPS,
    MIDDLEWARE,
    SESSION_MIDDLEWARE,
    database_for,
    drf_settings,
)

SERVICE_NAME = "tenancy"
ROOT_URLCONF = "config.urls.tenancy"
DATABASES = {"default": database_for("tenancy")}
READINESS_CHECKS = ["database", "cache", "broker"]

INSTALLED_APPS = [
    *ADMIN_APPS,
    *INSTALLED_APPS,
    *DRF_APPS,
    "apps.events",
    "apps.tenancy",
]
MIDDLEWARE = [*MIDDLEWARE, *SESSION_MIDDLEWARE]

REST_FRAMEWORK, SPECTACULAR_SETTINGS = drf_settings("Tenancy")

# Service-to-service calls (identity's /internal/tenant-owners at signup).
IDENTITY_TIMEOUT = env_float("IDENTITY_TIMEOUT", 10.0)
