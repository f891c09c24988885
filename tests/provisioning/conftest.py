"""Provisioning tests: real PostgreSQL, real schemas, databases and roles.

Tenants are created through the real services and dropped at the end of the session.
The tests hold the database open without a wrapping transaction: provisioning runs DDL,
CREATE DATABASE and connections as other roles, none of which a test transaction can hold.
"""

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from django.conf import settings
from django.db import connections

from apps.projects.tenants import services
from apps.projects.tenants.models import Tenant


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[None]:
    """The test database, made whether or not a test carries a django_db mark (none here does)."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        created = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        connections.close_all()
        teardown_databases(created, verbosity=0)


@pytest.fixture(scope="session", autouse=True)
def provisioning_db(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[None]:
    suffix = settings.TEST_DB_SUFFIX
    # Never share a template or tenant database with the development stack.
    settings.TENANT_TEMPLATE_DATABASE = f"test_{settings.DB_NAME_PREFIX}tenant_template{suffix}"
    settings.TENANT_DATABASE_PREFIX = f"test_{settings.DB_NAME_PREFIX}tenant{suffix}_"
    with django_db_blocker.unblock():
        yield
        connections["default"].set_schema_to_public()
        for tenant in Tenant.objects.all():
            services.tenant_destroy(tenant=tenant)
        for alias in list(connections.settings):
            if alias.startswith("tenant_"):
                connections[alias].close()
        with psycopg.connect(f"{settings.POSTGRES_URL}/postgres", autocommit=True) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{settings.TENANT_TEMPLATE_DATABASE}" WITH (FORCE)')


@pytest.fixture
def new_tenant() -> Callable[..., Tenant]:
    def provision(*, isolation: str = "schema", placement: str = "default", **kwargs: object) -> Tenant:
        tenant_id = uuid.uuid4()
        slug = kwargs.pop("slug", f"t{tenant_id.hex[:10]}")
        return services.tenant_provision(
            tenant_id=tenant_id, slug=slug, name=f"Org {slug}", isolation=isolation, placement=placement, **kwargs
        )

    return provision
