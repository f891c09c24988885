"""The projects service's registry of where each tenant's board data lives.

The tenancy service is the source of truth for tenants; this registry is the projects
service's working copy: which schema (or dedicated database) holds a tenant's tables,
how far its provisioning got (a step log, so a crashed run resumes where it stopped),
and which tenant-app migration state it is at (so `migrate_tenants` skips tenants that
are already at the target without opening a migration run).
"""

from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

from apps.events.catalog import Isolation
from apps.events.catalog import TenantStatus as ProvisioningStatus

__all__ = ["Domain", "Isolation", "ProvisioningStatus", "Tenant"]


class Tenant(TenantMixin):
    # tenancy's UUID for the tenant: what the gateway sends as X-Tenant-ID.
    tenant_id = models.UUIDField(unique=True)
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    isolation = models.CharField(max_length=16, choices=Isolation.choices, default=Isolation.SCHEMA)
    # A name from settings.TENANT_DATABASE_SERVERS: the PostgreSQL server of a database-mode tenant.
    placement = models.CharField(max_length=63, default="default")
    database_name = models.CharField(max_length=63, blank=True)
    database_role = models.CharField(max_length=63, blank=True)
    status = models.CharField(max_length=16, choices=ProvisioningStatus.choices, default=ProvisioningStatus.PENDING)
    steps_done = models.JSONField(default=list, blank=True)
    failure_reason = models.TextField(blank=True)
    # Automatic retries of a failed provisioning: attempts since the last TenantCreated, and when the
    # next one is due (None: none is; see services.tenant_provisioning_retries_due).
    provisioning_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # A digest of the tenant-app migrations applied to this tenant's tables (selectors.migration_target).
    schema_version = models.CharField(max_length=64, blank=True, db_index=True)
    migrated_at = models.DateTimeField(null=True, blank=True)
    last_migration_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Provisioning creates the schema itself (a template clone), step by step.
    auto_create_schema = False

    def __str__(self) -> str:
        return self.slug

    @property
    def is_database_mode(self) -> bool:
        return self.isolation == Isolation.DATABASE


class Domain(DomainMixin):
    pass
