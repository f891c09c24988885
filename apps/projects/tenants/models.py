"""The projects service's copy of where each tenant's board data lives.

The tenancy service is the source of truth; this registry is what django-tenants reads
to switch the connection to a tenant's schema.
"""

from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Tenant(TenantMixin):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    auto_create_schema = True

    def __str__(self) -> str:
        return self.slug


class Domain(DomainMixin):
    pass
