"""Projects: boards, columns and tasks, one PostgreSQL schema (or database) per tenant.

django-tenants keeps the tenant registry in the public schema (SHARED_APPS) and the
board data in each tenant's schema (TENANT_APPS). Channels serves the live board.
"""

from django.core.exceptions import ImproperlyConfigured

from config.env import env_float, env_int, env_list, env_secret, env_str
from config.settings.base import *  # noqa: F403
from config.settings.base import (
    BASE_DIR,
    CELERY_BEAT_SCHEDULE,
    DB_NAME_PREFIX,
    DEBUG,
    INSTALLED_APPS,
    MIDDLEWARE,
    POSTGRES_URL,
    REDIS_URL,
    TEST_DB_SUFFIX,
    beat_every,
    database_for,
)

SERVICE_NAME = "projects"
ROOT_URLCONF = "config.urls.projects"
PUBLIC_SCHEMA_URLCONF = "config.urls.projects"
# The WebSocket routes config/asgi.py serves through Channels (the live board).
WEBSOCKET_URLCONF = "apps.projects.routing"
DATABASES = {"default": database_for("projects", engine="django_tenants.postgresql_backend")}
# Tenant routing (docs/adr/0001-database-mode-routing.md): the tenant middleware reads
# X-Tenant-ID (or the Host), sets a contextvar and the connection's schema; the router
# sends tenant-app models of a database-mode tenant to an alias added at run time.
DATABASE_ROUTERS = [
    "apps.projects.tenants.routers.TenantDatabaseRouter",
    "django_tenants.routers.TenantSyncRouter",
]
READINESS_CHECKS = ["database", "cache", "broker"]
# django-tenants sets the search_path once per connection checkout and tenant switch (it forgets it
# on close, rollback and set_tenant), not before every query: that halved the board's statements.
TENANT_LIMIT_SET_CALLS = True
# How long the request path may reuse an active tenant's registry row (apps/projects/tenants/selectors.py).
TENANT_CACHE_SECONDS = env_float("TENANT_CACHE_SECONDS", 5.0)

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

MIDDLEWARE = [*MIDDLEWARE, "apps.projects.tenants.middleware.TenantMiddleware"]

# Provisioning. Schema mode clones TENANT_TEMPLATE_SCHEMA; database mode creates
# tenant_<id> from TENANT_TEMPLATE_DATABASE on one of TENANT_DATABASE_SERVERS (the
# placements: "name=postgres://...,name2=..."; "default" is the service's own server).
TENANT_TEMPLATE_SCHEMA = env_str("TENANT_TEMPLATE_SCHEMA", "tenant_template")
TENANT_TEMPLATE_DATABASE = env_str("TENANT_TEMPLATE_DATABASE", f"{DB_NAME_PREFIX}tenant_template{TEST_DB_SUFFIX}")
TENANT_DATABASE_PREFIX = env_str("TENANT_DATABASE_PREFIX", f"{DB_NAME_PREFIX}tenant_")
TENANT_DATABASE_SERVERS = {
    "default": POSTGRES_URL,
    **dict(item.split("=", 1) for item in env_str("TENANT_DATABASE_SERVERS", "").split(",") if "=" in item),
}
# Each database-mode tenant's role password is derived from this secret and the role name.
TENANT_DB_PASSWORD_SECRET = env_secret("TENANT_DB_PASSWORD_SECRET", dev_default="dev-tenant-db-secret", debug=DEBUG)
# Each database-mode tenant's alias gets its own pool of at most TENANT_DB_POOL_MAX_SIZE connections
# (never more than the process's DB_POOL_MAX_SIZE), emptied after TENANT_DB_POOL_MAX_IDLE idle seconds;
# a process keeps at most TENANT_DB_POOLS_MAX such pools open (apps/projects/db.py). Keep that at
# least the process's thread count. TENANT_DB_CONN_MAX_AGE applies only with pooling off.
TENANT_DB_POOLS_MAX = env_int("TENANT_DB_POOLS_MAX", 4)
TENANT_DB_POOL_MAX_SIZE = env_int("TENANT_DB_POOL_MAX_SIZE", 2)
TENANT_DB_POOL_MAX_IDLE = env_float("TENANT_DB_POOL_MAX_IDLE", 30.0)
if TENANT_DB_POOLS_MAX < 1 or TENANT_DB_POOL_MAX_SIZE < 1:
    raise ImproperlyConfigured("TENANT_DB_POOLS_MAX and TENANT_DB_POOL_MAX_SIZE must be at least 1")
TENANT_DB_CONN_MAX_AGE = env_int("TENANT_DB_CONN_MAX_AGE", 60)
# A provisioning that failed for a reason that may pass (a server down, a template dropped) is tried
# again after each of these delays in turn, then left `failed` (apps/projects/tenants/services.py).
TENANT_PROVISIONING_RETRY_SECONDS = [
    int(seconds) for seconds in env_list("TENANT_PROVISIONING_RETRY_SECONDS", ["10", "30", "90", "270"])
]
# A database-mode tenant's events wait in its own database's outbox until moved into this service's;
# the relay sweeps every such outbox this often (the move right after each commit is the usual path).
EVENTS_RELAY_SWEEPERS = ["apps.projects.tenants.outbox.tenant_outboxes_sweep"]
EVENTS_RELAY_SWEEP_SECONDS = float(env_int("EVENTS_RELAY_SWEEP_SECONDS", 5))
# Celery beat (beat-projects): provisioning retries that are due, every few seconds.
TENANT_PROVISIONING_RETRY_POLL_SECONDS = env_int("TENANT_PROVISIONING_RETRY_POLL_SECONDS", 10)
CELERY_BEAT_SCHEDULE = {
    **CELERY_BEAT_SCHEDULE,
    "tenant-provisioning-retries": beat_every(
        "apps.projects.tenants.tasks.provisioning_retries_due", TENANT_PROVISIONING_RETRY_POLL_SECONDS
    ),
}

# redis-py 8 times a read out after 5 s unless told otherwise, and the layer's receive blocks in
# BZPOPMIN for 5 s: every idle board socket was torn down and reconnected every 5 s
# (django/channels_redis#422). The read timeout outlasts that block, so only a dead Redis trips it.
CHANNELS_REDIS_SOCKET_TIMEOUT = env_float("CHANNELS_REDIS_SOCKET_TIMEOUT", 15.0)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": CHANNELS_REDIS_SOCKET_TIMEOUT}],
            "prefix": "projects",
        },
    }
}

# Live board updates: each board's last messages stay in Redis for clients catching up (?since=).
PROJECTS_LIVE_REDIS_URL = env_str("PROJECTS_LIVE_REDIS_URL", REDIS_URL)
PROJECTS_LIVE_PREFIX = env_str("PROJECTS_LIVE_PREFIX", "projects:live")

# Attachments: on the filesystem by default; ATTACHMENTS_STORAGE=s3 keeps them in any
# S3-compatible store through django-storages (credentials from the usual AWS_* variables).
MEDIA_ROOT = env_str("MEDIA_ROOT", str(BASE_DIR / ".data" / "media"))
PROJECTS_ATTACHMENT_MAX_BYTES = env_int("PROJECTS_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
PROJECTS_ATTACHMENT_TYPES = env_list(
    "PROJECTS_ATTACHMENT_TYPES",
    [
        "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "application/zip",
        "text/plain", "text/markdown", "text/csv", "application/json",
    ],
)  # fmt: skip
_ATTACHMENT_BACKENDS = {
    "filesystem": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": MEDIA_ROOT}},
    "s3": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("ATTACHMENTS_S3_BUCKET", "attachments"),
            "endpoint_url": env_str("ATTACHMENTS_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("ATTACHMENTS_S3_REGION", "") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    },
}
_attachments_backend = env_str("ATTACHMENTS_STORAGE", "filesystem")
if _attachments_backend not in _ATTACHMENT_BACKENDS:
    raise ImproperlyConfigured(
        f"ATTACHMENTS_STORAGE={_attachments_backend!r}: use one of {sorted(_ATTACHMENT_BACKENDS)}"
    )
STORAGES = {
    "default": _ATTACHMENT_BACKENDS["filesystem"],
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "attachments": _ATTACHMENT_BACKENDS[_attachments_backend],
}
