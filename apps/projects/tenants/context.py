"""Which tenant the current code runs for, and the database connection that serves it.

A contextvar holds the tenant (so the DB router can read it from anywhere in the
request, task or consumer); the connection that serves it has the tenant's schema set.
Under ASGI and in Channels consumers, enter `tenant_context` inside the same synchronous
function that runs the queries: connections are per thread (django-tenants issue #820).
"""

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import dj_database_url
from django.conf import settings
from django.db import connections

from apps.projects.db import tenant_pools
from apps.projects.tenants.models import Tenant
from config.settings.base import pool_options

TENANT_BACKEND = "django_tenants.postgresql_backend"

_current_tenant: ContextVar[Tenant | None] = ContextVar("current_tenant", default=None)


def current_tenant() -> Tenant | None:
    return _current_tenant.get()


def database_role_password(*, role: str) -> str:
    """Derived, not stored: provisioning can be resumed and the registry holds no secret."""
    secret = settings.TENANT_DB_PASSWORD_SECRET.encode()
    return hmac.new(secret, role.encode(), hashlib.sha256).hexdigest()


def server_url(placement: str) -> str:
    try:
        return settings.TENANT_DATABASE_SERVERS[placement].rstrip("/")
    except KeyError:
        raise LookupError(f"No PostgreSQL server is registered for placement {placement!r}") from None


def _alias_config(
    *, placement: str, database: str, user: str | None, password: str | None, max_age: int, pool: dict | None = None
) -> dict:
    config = dj_database_url.parse(
        f"{server_url(placement)}/{database}", conn_max_age=0 if pool else max_age, conn_health_checks=True
    )
    config["ENGINE"] = TENANT_BACKEND
    if pool:
        config.setdefault("OPTIONS", {})["pool"] = pool
    if user is not None:
        config["USER"] = user
        config["PASSWORD"] = password
    # Already a real database: a test run must never create or destroy it.
    config["TEST"] = {"NAME": database, "MIRROR": None}
    return connections.configure_settings({"default": config})["default"]


def _alias_register(alias: str, config: dict) -> str:
    if alias not in connections.settings:
        connections.settings[alias] = config
        settings.DATABASES[alias] = config
    return alias


def tenant_alias(tenant: Tenant) -> str:
    """The runtime alias of a database-mode tenant: its own least-privilege role, and its own small
    pool among the process's capped set (apps/projects/db.py)."""
    alias = f"tenant_{tenant.tenant_id.hex}"
    if alias not in connections.settings:
        config = _alias_config(
            placement=tenant.placement,
            database=tenant.database_name,
            user=tenant.database_role,
            password=database_role_password(role=tenant.database_role),
            max_age=settings.TENANT_DB_CONN_MAX_AGE,
            pool=tenant_pool_options(),
        )
        _alias_register(alias, config)
    if settings.DB_POOL_MAX_SIZE:
        tenant_pools.touch(alias)
    return alias


def tenant_pool_options() -> dict | None:
    """A tenant alias's pool: no bigger than the process's own, empty when idle."""
    if not settings.DB_POOL_MAX_SIZE:
        return None
    return pool_options(
        max_size=min(settings.TENANT_DB_POOL_MAX_SIZE, settings.DB_POOL_MAX_SIZE),
        min_size=0,
        max_idle=settings.TENANT_DB_POOL_MAX_IDLE,
    )


def tenant_admin_alias(tenant: Tenant) -> str:
    """The service's own (owner) credentials on a tenant database: for migrations only."""
    alias = f"tenant_{tenant.tenant_id.hex}__admin"
    config = _alias_config(
        placement=tenant.placement, database=tenant.database_name, user=None, password=None, max_age=0
    )
    return _alias_register(alias, config)


def template_database_alias(placement: str) -> str:
    alias = f"tenant_template__{placement}"
    config = _alias_config(
        placement=placement, database=settings.TENANT_TEMPLATE_DATABASE, user=None, password=None, max_age=0
    )
    return _alias_register(alias, config)


def tenant_connection_alias(tenant: Tenant) -> str:
    return tenant_alias(tenant) if tenant.is_database_mode else "default"


def _activate(tenant: Tenant | None) -> None:
    if tenant is None:
        connections["default"].set_schema_to_public()
        return
    if tenant.is_database_mode:
        # Shared apps (the registry, the outbox) stay on the default alias in public.
        connections["default"].set_schema_to_public()
        connections[tenant_alias(tenant)].set_tenant(tenant)
    else:
        connections["default"].set_tenant(tenant)


def tenant_activate(tenant: Tenant | None) -> None:
    """Points this thread at the tenant until the next call (the middleware's entry point)."""
    _current_tenant.set(tenant)
    _activate(tenant)


@contextmanager
def tenant_context(tenant: Tenant | None) -> Iterator[Tenant | None]:
    """Runs the block for `tenant` and restores whatever was active before."""
    previous = _current_tenant.get()
    token = _current_tenant.set(tenant)
    _activate(tenant)
    try:
        yield tenant
    finally:
        _current_tenant.reset(token)
        _activate(previous)
