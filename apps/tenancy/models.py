"""Tenancy: the single source of truth for who the tenants are and where they live."""

import uuid

from django.db import models

from apps.events.catalog import Isolation, TenantStatus

__all__ = ["Domain", "Isolation", "Placement", "Tenant", "TenantStatus"]


class Placement(models.Model):
    """A PostgreSQL server that can hold database-mode tenants.

    Only the name lives here; the projects service maps names to servers
    (TENANT_DATABASE_SERVERS), so no credentials travel in events or sit in this table.
    """

    name = models.SlugField(max_length=63, unique=True)
    description = models.CharField(max_length=200, blank=True)
    accepts_new_tenants = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_placement"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    isolation = models.CharField(max_length=16, choices=Isolation.choices, default=Isolation.SCHEMA)
    placement = models.ForeignKey(Placement, null=True, blank=True, on_delete=models.PROTECT, related_name="tenants")
    status = models.CharField(max_length=16, choices=TenantStatus.choices, default=TenantStatus.PENDING, db_index=True)
    failure_reason = models.TextField(blank=True)
    provisioning_attempts = models.PositiveIntegerField(default=0)
    owner_email = models.EmailField(max_length=254)
    owner_user_id = models.CharField(max_length=64, blank=True)
    # The tenant-app migration state the projects service last reported for this tenant.
    schema_version = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    provisioned_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.slug


class Domain(models.Model):
    domain = models.CharField(max_length=253, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="domains")
    is_primary = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.domain
