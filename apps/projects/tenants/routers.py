"""Sends a database-mode tenant's tenant-app models to that tenant's own database.

Schema-mode tenants need nothing here: django-tenants has already set the schema on the
default connection. See docs/adr/0001-database-mode-routing.md.
"""

from django.apps import apps
from django.conf import settings
from django.db.models import Model

from apps.projects.tenants.context import current_tenant, tenant_alias

TENANT_DATABASE_ALIAS_PREFIX = "tenant_"


def _is_tenant_app(app_label: str) -> bool:
    return apps.get_app_config(app_label).name in settings.TENANT_APPS


class TenantDatabaseRouter:
    def _route(self, model: type[Model]) -> str | None:
        tenant = current_tenant()
        if tenant is None or not tenant.is_database_mode or not _is_tenant_app(model._meta.app_label):
            return None
        return tenant_alias(tenant)

    def db_for_read(self, model: type[Model], **hints: object) -> str | None:
        return self._route(model)

    def db_for_write(self, model: type[Model], **hints: object) -> str | None:
        return self._route(model)

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: object) -> bool | None:
        # A tenant database (or the template database) holds the tenant apps and nothing else;
        # the default alias is left to django-tenants' TenantSyncRouter.
        if db.startswith(TENANT_DATABASE_ALIAS_PREFIX):
            return _is_tenant_app(app_label)
        return None
