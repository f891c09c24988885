"""Fixtures for the projects service's suite.

Two tenants are created once per session (their schemas hold the board tables); each
test works inside one tenant's schema and its data is reset afterwards: by rolling back
the test's transaction, or, for tests that need real commits (live updates, the ASGI
server), by truncating the tenant tables.
"""

import copy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from apps.projects.models import Project
from apps.projects.permissions import CallerClaims
from tests.helpers import REDIS_URL

pytest_plugins = ["tests.projects.tokens"]

SCHEMAS = ("proj_a", "proj_b")
MEMBER_PERMISSIONS = frozenset({"create_task", "edit_task", "assign_task", "move_task", "comment", "log_work"})
MANAGER_PERMISSIONS = MEMBER_PERMISSIONS | {"create_project", "edit_columns", "manage_members", "delete_task"}
TENANT_TABLES = (
    "projects_activity",
    "projects_worklog",
    "projects_attachment",
    "projects_comment",
    "projects_subtask",
    "projects_task",
    "projects_label",
    "projects_column",
    "projects_board",
    "projects_projectmember",
    "projects_project",
    "projects_person",
)


@dataclass(frozen=True)
class TenantInfo:
    schema: str
    tenant_id: str
    slug: str


def _tenant_uuid(tenant: object) -> str:
    for name in ("tenant_id", "uuid", "external_id"):
        value = getattr(tenant, name, None)
        if value:
            return str(value)
    if isinstance(getattr(tenant, "id", None), uuid.UUID):
        return str(tenant.id)
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, tenant.schema_name))


@pytest.fixture(scope="session", autouse=True)
def _live_settings_apart() -> None:
    """This suite's own Redis database and key prefix for the channel layer and the message log."""
    from channels.layers import channel_layers
    from django.conf import settings

    settings.PROJECTS_LIVE_REDIS_URL = REDIS_URL
    settings.PROJECTS_LIVE_PREFIX = f"projtest:{uuid.uuid4().hex[:8]}"
    # The service's own layer settings (its Redis read timeout included), on this suite's database.
    layer = copy.deepcopy(settings.CHANNEL_LAYERS["default"])
    layer["CONFIG"]["hosts"] = [{**host, "address": REDIS_URL} for host in layer["CONFIG"]["hosts"]]
    layer["CONFIG"]["prefix"] = settings.PROJECTS_LIVE_PREFIX
    settings.CHANNEL_LAYERS = {"default": layer}
    channel_layers.backends = {}
    import apps.projects.live as live

    live._client = None


@pytest.fixture(autouse=True)
def _channel_layer_per_test(_live_settings_apart: None) -> None:
    """A fresh channel layer for every test: channels-redis binds its receive lock to the event
    loop that first took it, and each async test runs on a loop of its own."""
    from channels.layers import channel_layers

    channel_layers.backends = {}


@pytest.fixture(scope="session")
def django_db_setup(
    django_test_environment: None,
    django_db_blocker: pytest.FixtureRequest,
    django_db_keepdb: bool,
    django_db_createdb: bool,
    django_db_modify_db_settings: None,
) -> Iterator[None]:
    """The test database, always: pytest-django only makes it when some test uses `db`, and
    the live tests commit for real (the `committed` fixture) instead."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=0, interactive=False, aliases={"default"}, keepdb=django_db_keepdb and not django_db_createdb
        )
    yield
    with django_db_blocker.unblock():
        # Threads of the ASGI tests (sync_to_async, uvicorn) may still hold connections.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        teardown_databases(config, verbosity=0, keepdb=django_db_keepdb and not django_db_createdb)


@pytest.fixture(scope="session")
def tenants(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> dict[str, TenantInfo]:
    from django_tenants.utils import get_tenant_domain_model, get_tenant_model

    tenant_model, domain_model = get_tenant_model(), get_tenant_domain_model()
    found = {}
    with django_db_blocker.unblock():
        for schema in SCHEMAS:
            tenant = tenant_model.objects.filter(schema_name=schema).first()
            if tenant is None:
                slug = schema.replace("_", "-")
                fields = {"schema_name": schema, "slug": slug, "name": f"Tenant {schema}"}
                field_names = {field.name for field in tenant_model._meta.get_fields()}
                if "tenant_id" in field_names:
                    fields["tenant_id"] = uuid.uuid4()
                if "status" in field_names:
                    fields["status"] = "active"
                tenant = tenant_model(**fields)
                tenant.save(verbosity=0)
                domain_model.objects.create(tenant=tenant, domain=f"{slug}.localhost", is_primary=True)
            # Provisioning normally creates the schema; here it is made directly, once per session.
            tenant.create_schema(check_if_exists=True, verbosity=0)
            found[schema] = TenantInfo(schema=schema, tenant_id=_tenant_uuid(tenant), slug=tenant.slug)
    return found


@pytest.fixture
def tenant_a(db: None, tenants: dict[str, TenantInfo]) -> Iterator[TenantInfo]:
    with schema_context("proj_a"):
        yield tenants["proj_a"]


def truncate_tenant_data() -> None:
    with connection.cursor() as cursor:
        for schema in SCHEMAS:
            tables = ", ".join(f'"{schema}"."{table}"' for table in TENANT_TABLES)
            cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture
def committed(tenants: dict[str, TenantInfo], django_db_blocker: pytest.FixtureRequest) -> Iterator[dict]:
    """Real commits (on_commit hooks run, other connections see the data); truncated after."""
    with django_db_blocker.unblock():
        try:
            yield tenants
        finally:
            connection.set_schema_to_public()
            truncate_tenant_data()


def make_caller(
    tenant: TenantInfo, user_id: str, *, roles: tuple[str, ...], permissions: frozenset[str]
) -> CallerClaims:
    return CallerClaims(user_id=user_id, tenant_id=tenant.tenant_id, roles=roles, permissions=permissions)


@pytest.fixture
def manager(tenant_a: TenantInfo) -> CallerClaims:
    return make_caller(tenant_a, "user-manager", roles=("manager",), permissions=MANAGER_PERMISSIONS)


@pytest.fixture
def member(tenant_a: TenantInfo) -> CallerClaims:
    return make_caller(tenant_a, "user-member", roles=("member",), permissions=MEMBER_PERMISSIONS)


@pytest.fixture
def viewer(tenant_a: TenantInfo) -> CallerClaims:
    return make_caller(tenant_a, "user-viewer", roles=("viewer",), permissions=frozenset({"comment"}))


@pytest.fixture
def project(manager: CallerClaims, member: CallerClaims, viewer: CallerClaims) -> Project:
    from apps.projects.services import projects as project_services

    project = project_services.project_create(caller=manager, key="DEMO", name="Demo")
    project_services.project_member_set(caller=manager, project_id=project.id, user_id=member.user_id, role="member")
    project_services.project_member_set(caller=manager, project_id=project.id, user_id=viewer.user_id, role="viewer")
    return project


@pytest.fixture
def board(project: Project):
    return project.boards.get()


@pytest.fixture
def columns(board) -> list:
    return list(board.columns.order_by("position"))
