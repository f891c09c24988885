"""Projects: boards, columns and tasks, one PostgreSQL schema (or database) per tenant.

django-tenants keeps the tenant registry in the public schema (SHARED_APPS) and the
board data in each tenant's schema (TENANT_APPS). Channels serves the live board.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import INSTALLED_APPS, MIDDLEWARE, REDIS_URL, database_for

SERVICE_NAME = "projects"
ROOT_URLCONF = "config.urls.projects"
PUBLIC_SCHEMA_URLCONF = "config.urls.projects"
DATABASES = {"default": database_for("projects", engine="django_tenants.postgresql_backend")}
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
READINESS_CHECKS = ["database", "cache", "broker"]

SHARED_APPS = [
    "django_tenants",
    "apps.projects.tenants",
    *INSTALLED_APPS,
    "ninja",
    "channels",
    # One outbox for every tenant, in the public schema, with a tenant column.
    "apps.events",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "apps.projects",
]
INSTALLED_APPS = list(dict.fromkeys([*SHARED_APPS, *TENANT_APPS]))

TENANT_MODEL = "project_tenants.Tenant"
TENANT_DOMAIN_MODEL = "project_tenants.Domain"

MIDDLEWARE = [*MIDDLEWARE]

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "projects"},
    }
}
