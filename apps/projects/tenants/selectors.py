"""Reads of the tenant registry and of the tenant-app migration state."""

import hashlib
import time
import uuid
from functools import cache

from django.apps import apps
from django.conf import settings
from django.db.migrations.loader import MigrationLoader
from django.db.models import QuerySet

from apps.projects.tenants.models import Domain, ProvisioningStatus, Tenant

# What provisioning and migrate_tenants create besides the tenant apps' migrations (a database-mode
# tenant's outbox table, apps/projects/tenants/outbox.py); renaming an entry re-visits every tenant.
STORAGE_OUTSIDE_MIGRATIONS = ("tenant_outbox.v1",)


def tenant_get(*, tenant_id: uuid.UUID | str) -> Tenant | None:
    try:
        tenant_uuid = uuid.UUID(str(tenant_id))
    except ValueError:
        return None
    return Tenant.objects.filter(tenant_id=tenant_uuid).first()


# Active tenants by id, for the request path: (tenant, monotonic time it was read).
_active_tenants: dict[uuid.UUID, tuple[Tenant, float]] = {}
_ACTIVE_TENANTS_MAX = 10_000


def tenant_get_for_request(*, tenant_id: uuid.UUID | str) -> Tenant | None:
    """`tenant_get`, remembered for TENANT_CACHE_SECONDS once the tenant is active.

    Every request of a tenant names it (X-Tenant-ID); reading the registry row each time was a
    query (and a search_path switch) on every request. Only active tenants are remembered, so a
    tenant whose provisioning finishes is served at once; a change to an active tenant's row (a
    migration's schema version) is seen within TENANT_CACHE_SECONDS, as the gateway's own cache is.
    """
    try:
        tenant_uuid = uuid.UUID(str(tenant_id))
    except ValueError:
        return None
    ttl = settings.TENANT_CACHE_SECONDS
    now = time.monotonic()
    remembered = _active_tenants.get(tenant_uuid)
    if remembered is not None and now - remembered[1] < ttl:
        return remembered[0]
    tenant = tenant_get(tenant_id=tenant_uuid)
    if tenant is not None and tenant.status == ProvisioningStatus.ACTIVE and ttl > 0:
        if len(_active_tenants) >= _ACTIVE_TENANTS_MAX:
            _active_tenants.clear()
        _active_tenants[tenant_uuid] = (tenant, now)
    else:
        _active_tenants.pop(tenant_uuid, None)
    return tenant


def tenant_get_for_host(*, host: str) -> Tenant | None:
    domain = Domain.objects.select_related("tenant").filter(domain=host.split(":", 1)[0].lower()).first()
    return domain.tenant if domain else None


def tenant_domain_name(*, slug: str) -> str:
    return f"{slug}.{settings.BASE_DOMAIN}"


@cache
def tenant_app_labels() -> frozenset[str]:
    return frozenset(config.label for config in apps.get_app_configs() if config.name in settings.TENANT_APPS)


@cache
def migration_target() -> tuple[str, tuple[tuple[str, str], ...]]:
    """The tenant apps' migrations on disk: a digest (the version) and the leaf nodes to migrate to.

    Read once per process: the code on disk does not change under a running process.
    """
    loader = MigrationLoader(None, ignore_no_migrations=True)  # no connection: disk only
    labels = tenant_app_labels()
    nodes = sorted(key for key in loader.graph.nodes if key[0] in labels)
    leaves = tuple(key for key in loader.graph.leaf_nodes() if key[0] in labels)
    # Storage made outside the migrations counts too: a tenant recorded before it was added is behind.
    parts = [f"{app}.{name}" for app, name in nodes] + list(STORAGE_OUTSIDE_MIGRATIONS)
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
    return digest, leaves


def migration_target_version() -> str:
    return migration_target()[0]


def tenants_behind(*, target_version: str, slugs: list[str] | None = None) -> QuerySet[Tenant]:
    """Active tenants not recorded at the target: the only ones a migration run opens."""
    queryset = Tenant.objects.filter(status=ProvisioningStatus.ACTIVE).exclude(schema_version=target_version)
    if slugs:
        queryset = queryset.filter(slug__in=slugs)
    return queryset.order_by("created_at")


def tenants_active_count(*, slugs: list[str] | None = None) -> int:
    queryset = Tenant.objects.filter(status=ProvisioningStatus.ACTIVE)
    if slugs:
        queryset = queryset.filter(slug__in=slugs)
    return queryset.count()
