from django.apps import AppConfig


class ProjectTenantsConfig(AppConfig):
    name = "apps.projects.tenants"
    label = "project_tenants"
    verbose_name = "Tenant registry (projects service)"

    def ready(self) -> None:
        from apps.projects.tenants import celery

        celery.connect()
