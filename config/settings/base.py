"""Settings every service shares. A service module imports these and names itself.

Configuration comes from environment variables (see config/env.py); each has a
development default that works on a machine where `make up` found or started the
backing servers.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env_bool("DJANGO_DEBUG", True)
# The demo tenant and login (CONTRACT.md) exist only where this is on; production refuses them.
DEMO_SEED_ALLOWED = env_bool("DEMO_SEED_ALLOWED", DEBUG)
SECRET_KEY = env_secret("DJANGO_SECRET_KEY", dev_default="dev-insecure-secret-key", debug=DEBUG)

# The apex domain: tenants live at <slug>.<BASE_DOMAIN>.
BASE_DOMAIN = env_str("BASE_DOMAIN", "localhost")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [BASE_DOMAIN, f".{BASE_DOMAIN}", "127.0.0.1", "testserver"])

# Backing servers. POSTGRES_URL names a server; each service keeps its own database on it
# unless DATABASE_URL names one outright.
POSTGRES_URL = env_str("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
BROKER_URL = env_str("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
MONGO_URL = env_str("MONGO_URL", "mongodb://127.0.0.1:27017")
# Lets two stacks share one server (the e2e stack uses "e2e_"): identity -> e2e_identity.
DB_NAME_PREFIX = env_str("DB_NAME_PREFIX", "")
# Lets parallel test runs on one server keep apart (test_identity_a, test_identity_b...).
TEST_DB_SUFFIX = env_str("TEST_DB_SUFFIX", "")

# Where the other services answer, for the few synchronous calls between them.
SERVICE_URLS = {
    "identity": env_str("IDENTITY_URL", "http://127.0.0.1:8001"),
    "tenancy": env_str("TENANCY_URL", "http://127.0.0.1:8002"),
    "projects": env_str("PROJECTS_URL", "http://127.0.0.1:8003"),
    "shortener": env_str("SHORTENER_URL", "http://127.0.0.1:8004"),
    "analytics": env_str("ANALYTICS_URL", "http://127.0.0.1:8005"),
}
READINESS_TIMEOUT = env_float("READINESS_TIMEOUT", 2.0)

# Tokens: identity signs them; the gateway and every service verify them (apps/common/auth.py).
JWT_ISSUER = env_str("JWT_ISSUER", "kanban-identity")
JWT_AUDIENCE = env_str("JWT_AUDIENCE", "kanban-platform")
# Service-to-service calls carry this in X-Internal-Token; the gateway never routes /internal/.
INTERNAL_API_TOKEN = env_secret("INTERNAL_API_TOKEN", dev_default="dev-internal-token", debug=DEBUG)
# The shortener signs a task link's visit with it; the projects service's shared view checks it.
SHARE_GRANT_SECRET = env_secret("SHARE_GRANT_SECRET", dev_default="dev-share-grant-secret", debug=DEBUG)


# Connection pools (docs/benchmarks.md, "Connection budget"). Every process keeps one bounded
# psycopg pool per database alias: at most DB_POOL_MAX_SIZE connections, sized to the process's
# threads by platform/processes.toml (`db_pool`), so the sum over all processes is a budget that
# stays below the server's max_connections. A request that finds the pool empty waits at most
# DB_POOL_TIMEOUT seconds, then gets 503 `service_busy` (apps/common/dbpool.py) instead of a hang;
# idle connections above DB_POOL_MIN_SIZE close after DB_POOL_MAX_IDLE seconds.
# DB_POOL_MAX_SIZE=0 turns pooling off (one persistent connection per thread, DB_CONN_MAX_AGE).
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 4)
DB_POOL_MIN_SIZE = env_int("DB_POOL_MIN_SIZE", 1)
DB_POOL_TIMEOUT = env_float("DB_POOL_TIMEOUT", 5.0)
DB_POOL_MAX_IDLE = env_float("DB_POOL_MAX_IDLE", 60.0)
if DB_POOL_MAX_SIZE < 0 or DB_POOL_MIN_SIZE < 0:
    raise ImproperlyConfigured("DB_POOL_MAX_SIZE and DB_POOL_MIN_SIZE must be 0 or more")
# What a 503 `service_busy` tells the client to wait before retrying, in seconds.
DB_POOL_RETRY_AFTER = env_int("DB_POOL_RETRY_AFTER", 1)
if DB_POOL_TIMEOUT <= 0 or DB_POOL_MAX_IDLE <= 0:
    raise ImproperlyConfigured("DB_POOL_TIMEOUT and DB_POOL_MAX_IDLE must be positive seconds")


def pool_options(
    *, max_size: int = DB_POOL_MAX_SIZE, min_size: int = DB_POOL_MIN_SIZE, max_idle: float = DB_POOL_MAX_IDLE
) -> dict:
    """OPTIONS["pool"] of a DATABASES entry: psycopg_pool.ConnectionPool's arguments."""
    return {
        "min_size": min(min_size, max_size),
        "max_size": max_size,
        "timeout": DB_POOL_TIMEOUT,
        "max_idle": max_idle,
        # Opening connections is the pool's only background work; one thread does it.
        "num_workers": 1,
    }


def database_config(url: str, *, engine: str, pool: dict | None) -> dict:
    """A DATABASES entry for `url`: pooled (CONN_MAX_AGE must then be 0), or persistent per thread."""
    conn_max_age = 0 if pool else env_int("DB_CONN_MAX_AGE", 60)
    config = dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
    config["ENGINE"] = engine
    if pool:
        config.setdefault("OPTIONS", {})["pool"] = pool
    return config


# The gateway's address(es): only from these is X-Forwarded-For believed (apps/common/http.py).
TRUSTED_PROXY_IPS = env_list("TRUSTED_PROXY_IPS", ["127.0.0.1", "::1"])

# Mail: Django's SMTP backend to EMAIL_HOST:EMAIL_PORT (in development the launcher's aiosmtpd
# catcher, platform/mailcatcher.py; in production the operator's relay).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 1025)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Kanban <no-reply@localhost>")


def database_for(service: str, *, engine: str = "django.db.backends.postgresql") -> dict:
    """The service's own PostgreSQL database, as a DATABASES entry."""
    url = env_str("DATABASE_URL", f"{POSTGRES_URL}/{DB_NAME_PREFIX}{service}")
    config = database_config(url, engine=engine, pool=pool_options() if DB_POOL_MAX_SIZE else None)
    config["TEST"] = {"NAME": f"test_{config['NAME']}{TEST_DB_SUFFIX}"}
    return config


INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.staticfiles",
    "apps.common",
]
# Services with a PostgreSQL database add "apps.events" (the outbox and processed events).

# Services with the Django admin and a DRF API (identity, tenancy) add these.
ADMIN_APPS = ["django.contrib.admin", "django.contrib.sessions", "django.contrib.messages"]
DRF_APPS = ["rest_framework", "drf_spectacular"]
SESSION_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]


def drf_settings(title: str) -> tuple[dict, dict]:
    """REST_FRAMEWORK and SPECTACULAR_SETTINGS for a DRF service: platform errors, OpenAPI at /openapi.json."""
    rest_framework = {
        "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
        "EXCEPTION_HANDLER": "apps.common.drf.exception_handler",
        "DEFAULT_AUTHENTICATION_CLASSES": [],
        "UNAUTHENTICATED_USER": None,
    }
    return rest_framework, {"TITLE": title, "VERSION": "1.0.0", "SERVE_INCLUDE_SCHEMA": False}


# Order matters (apps/common/middleware.py): headers and the request id wrap everything; the
# error contract wraps everything that can fail; the input guard runs before any view or query.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "apps.common.middleware.SecurityHeadersMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.common.middleware.RequestIdMiddleware",
    "apps.common.middleware.ErrorContractMiddleware",
    "apps.common.middleware.RequestGuardMiddleware",
    "django.middleware.common.CommonMiddleware",
    # An empty connection pool answers 503 `service_busy`, not 500 (apps/common/dbpool.py).
    "apps.common.dbpool.DatabasePoolMiddleware",
]

# Errors: the platform's JSON (API paths) or HTML page (browsers), DEBUG or not (apps/common/errors.py).
DEFAULT_EXCEPTION_REPORTER = "apps.common.errors.MarkingExceptionReporter"
CSRF_FAILURE_VIEW = "apps.common.errors.csrf_failure"
# Bodies: larger ones are a 413; deeper JSON a 400 (RequestGuardMiddleware), long before recursion limits.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)
REQUEST_JSON_MAX_DEPTH = env_int("REQUEST_JSON_MAX_DEPTH", 32)

# Security headers on every response. The pages load scripts and styles only from /static/
# (no inline script, no on* attribute, no inline style: templates/ and static/ keep it that way;
# htmx's own indicator <style> is switched off by its htmx-config meta tag in base.html).
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# HSTS only reaches a browser over HTTPS (SecurityMiddleware sends it on secure requests only).
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG  # every tenant is a subdomain, served over HTTPS in production

# Cookies. Secure outside development; host-only, never Domain=<parent>, so one tenant's
# subdomain cannot set a cookie another tenant's host would receive. In production the
# session cookie's `__Host-` prefix makes browsers refuse any such planted cookie outright
# (the prefix requires Secure, Path=/ and no Domain).
# The CSRF cookie stays readable by scripts and named `csrftoken`: board.js sends its value in
# X-CSRFToken, and the gateway (gateway/auth.py) checks that header against this cookie by name
# for every cookie-authenticated write. HttpOnly would add nothing (Django's CSRF docs: a script
# that can read it is already same-origin). CSRF_COOKIE_HOST_PREFIX=1 names it
# `__Host-csrftoken` once the gateway reads that name too; board.js reads either. Planting is
# also refused by Django's Origin check on every service (a sibling subdomain's Origin differs).
# Not CSRF_USE_SESSIONS: the board (projects, no sessions) and identity's refresh endpoint
# check the same token on the same host.
COOKIE_HOST_PREFIX = env_bool("COOKIE_HOST_PREFIX", not DEBUG)
SESSION_COOKIE_NAME = "__Host-sessionid" if COOKIE_HOST_PREFIX else "sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken" if env_bool("CSRF_COOKIE_HOST_PREFIX", False) else "csrftoken"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_DOMAIN = CSRF_COOKIE_DOMAIN = None
if (COOKIE_HOST_PREFIX or CSRF_COOKIE_NAME.startswith("__Host-")) and DEBUG:
    raise ImproperlyConfigured("__Host- cookies need HTTPS (Secure cookies): leave them off with DJANGO_DEBUG=1")

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.common.context_processors.topbar",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "svc",
    }
}

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / ".data" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = True

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "ts", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Events (apps/events, docs/events.md) -------------------------------------------------------
EVENTS_BROKER_URL = env_str("EVENTS_BROKER_URL", BROKER_URL)
# Names are settings so that tests and parallel stacks can keep their own exchange and queues.
EVENTS_EXCHANGE = env_str("EVENTS_EXCHANGE", "platform.events")
EVENTS_QUEUE_PREFIX = env_str("EVENTS_QUEUE_PREFIX", "events")  # queue <prefix>.<service>, .retry.<n>ms, .dlq
# One retry queue per delay; a message fails len(delays) + 1 times before the dead-letter queue.
_retry_delays = env_list("EVENTS_RETRY_DELAYS_MS", ["1000", "10000", "60000"])
if not all(delay.isdigit() for delay in _retry_delays):
    raise ImproperlyConfigured(f"EVENTS_RETRY_DELAYS_MS={_retry_delays!r} must be milliseconds, e.g. 1000,10000")
EVENTS_RETRY_DELAYS_MS = [int(delay) for delay in _retry_delays]
EVENTS_RELAY_BATCH_SIZE = env_int("EVENTS_RELAY_BATCH_SIZE", 500)
EVENTS_RELAY_IDLE_POLL_SECONDS = env_float("EVENTS_RELAY_IDLE_POLL_SECONDS", 2.0)
EVENTS_OUTBOX_RETENTION_HOURS = env_int("EVENTS_OUTBOX_RETENTION_HOURS", 72)
EVENTS_CONSUMER_PREFETCH = env_int("EVENTS_CONSUMER_PREFETCH", 200)
EVENTS_CONSUMER_BATCH_SIZE = env_int("EVENTS_CONSUMER_BATCH_SIZE", 100)
# The Redis transport (EVENTS_BROKER_URL=redis://..., the development fallback): the stream's
# approximate cap, and how long another consumer's delivery may sit unsettled before it is taken over.
EVENTS_REDIS_STREAM_MAXLEN = env_int("EVENTS_REDIS_STREAM_MAXLEN", 100_000)
EVENTS_REDIS_CLAIM_IDLE_MS = env_int("EVENTS_REDIS_CLAIM_IDLE_MS", 60_000)
EVENTS_PROCESSED_STORE = env_str("EVENTS_PROCESSED_STORE", "postgres")  # "mongo" for services without PostgreSQL

# Celery (config/celery.py): background jobs on RabbitMQ, one queue per service -----------------
CELERY_BROKER_URL = BROKER_URL
# A task is sent only once RabbitMQ has it, and acked only once it ran: a worker that dies
# mid-task hands it to another worker (tasks are thin callers of idempotent services).
CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)


def beat_every(task: str, seconds: float, **kwargs: object) -> dict:
    """A CELERY_BEAT_SCHEDULE entry. A run that waited past the next one (no worker up) is dropped:
    the next run does the same work, and nothing piles up in the queue."""
    return {"task": task, "schedule": float(seconds), "options": {"expires": float(seconds)}, "kwargs": kwargs}


# Celery beat: a service with periodic jobs runs its own beat beside its worker (platform/processes.toml,
# beat-<service>), so each job lands on that service's queue and runs against its own database.
# A service's settings extend this schedule with its own jobs.
EVENTS_OUTBOX_PURGE_SECONDS = env_int("EVENTS_OUTBOX_PURGE_SECONDS", 3600)
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "outbox-purge": beat_every("apps.events.tasks.outbox_purge", EVENTS_OUTBOX_PURGE_SECONDS),
}
