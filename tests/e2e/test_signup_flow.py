"""Signup to first project, through the gateway of a launcher-booted stack, in both isolation modes.

An organization signs up on the apex, waits for `active`, signs in on its own subdomain (the
`Host` header), reads itself and creates a project. Then the two organizations (one per mode)
must not see each other, and bad signups must be refused with JSON errors and leave no trace.

Its own stack: ports from E2E_SIGNUP_PORT_BASE (18100), databases `e2e_signup_*`, Redis DB 12.
The databases outlive a run, so every run signs up fresh slugs.
"""

import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.e2e.stack import Stack, stack_run

pytestmark = pytest.mark.e2e

PORT_BASE = int(os.environ.get("E2E_SIGNUP_PORT_BASE", "18100"))
DB_PREFIX = "e2e_signup_"
POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
ACTIVE_TIMEOUT = 30
MODES = ("schema", "database")
PASSWORD = "a-strong-pass-4821"


@dataclass
class Organization:
    slug: str
    tenant_id: str
    isolation: str
    email: str
    access: str
    seconds_to_active: float

    @property
    def host(self) -> str:
        return f"{self.slug}.localhost:{PORT_BASE}"

    def headers(self, *, token: str | None = None) -> dict[str, str]:
        return {"Host": self.host, "Authorization": f"Bearer {token or self.access}"}


def assert_json_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"], error
    if code is not None:
        assert error["code"] == code, error
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error


def sql_row(database: str, query: str | sql.Composable, *params: object) -> tuple:
    with psycopg.connect(f"{POSTGRES_URL}/{DB_PREFIX}{database}", autocommit=True) as connection:
        return connection.execute(query, params).fetchone()


def sql_count(database: str, table: str) -> int:
    return sql_row(database, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))[0]


def platform_counts() -> dict[str, int]:
    """Rows a signup creates, counted in the services' own databases."""
    return {
        "tenants": sql_count("tenancy", "tenancy_tenant"),
        "domains": sql_count("tenancy", "tenancy_domain"),
        "users": sql_count("identity", "identity_user"),
        "organizations": sql_count("identity", "identity_organization"),
        "memberships": sql_count("identity", "identity_membership"),
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("e2e-signup-data")
    # This module signs up more organizations in a minute than the per-IP signup limit allows.
    env = {"GATEWAY_RATE_LIMIT_SIGNUP": "120/minute"}
    with stack_run(port_base=PORT_BASE, db_prefix=DB_PREFIX, redis_db=12, data_dir=data_dir, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway, timeout=15) as http:
        yield http


@pytest.fixture(scope="module")
def run_id() -> str:
    return secrets.token_hex(3)


def organization_sign_up(client: httpx.Client, *, slug: str, isolation: str) -> Organization:
    email = f"owner@{slug}.test"
    started = time.monotonic()
    created = client.post(
        "/api/tenants",
        json={
            "name": f"Org {slug}",
            "slug": slug,
            "owner_email": email,
            "owner_password": PASSWORD,
            "isolation": isolation,
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["slug"] == slug
    assert body["isolation"] == isolation
    assert body["status"] in ("pending", "provisioning")

    deadline = started + ACTIVE_TIMEOUT
    while True:
        status = client.get(f"/api/tenants/{slug}")
        assert status.status_code == 200, status.text
        if status.json()["status"] == "active":
            break
        assert status.json()["status"] != "failed", status.json()
        assert time.monotonic() < deadline, f"{slug} not active after {ACTIVE_TIMEOUT} s: {status.json()}"
        time.sleep(0.2)
    seconds_to_active = time.monotonic() - started

    token = client.post(
        "/api/auth/token",
        headers={"Host": f"{slug}.localhost:{PORT_BASE}"},
        json={"email": email, "password": PASSWORD},
    )
    assert token.status_code == 200, token.text
    assert token.json()["token_type"] == "Bearer"
    return Organization(
        slug=slug,
        tenant_id=body["id"],
        isolation=isolation,
        email=email,
        access=token.json()["access"],
        seconds_to_active=seconds_to_active,
    )


@pytest.fixture(scope="module")
def organizations(client: httpx.Client, run_id: str) -> dict[str, Organization]:
    signed_up = {mode: organization_sign_up(client, slug=f"e2e-{mode[:2]}-{run_id}", isolation=mode) for mode in MODES}
    print({mode: f"{org.seconds_to_active:.2f}s to active" for mode, org in signed_up.items()})
    return signed_up


def project_create(client: httpx.Client, org: Organization, *, key: str, name: str) -> dict:
    response = client.post("/api/projects", headers=org.headers(), json={"key": key, "name": name})
    assert response.status_code in (200, 201), response.text
    return response.json()


def project_list(client: httpx.Client, org: Organization) -> list[dict]:
    response = client.get("/api/projects", headers=org.headers())
    assert response.status_code == 200, response.text
    body = response.json()
    return body["items"] if isinstance(body, dict) else body


@pytest.mark.parametrize("mode", MODES)
def test_owner_signs_in_and_is_the_owner(
    client: httpx.Client, organizations: dict[str, Organization], mode: str
) -> None:
    org = organizations[mode]
    assert org.seconds_to_active < ACTIVE_TIMEOUT
    public = client.get(f"/api/tenants/{org.slug}").json()
    assert public == {**public, "id": org.tenant_id, "status": "active", "isolation": mode, "failure_reason": None}

    me = client.get("/api/auth/me", headers=org.headers())
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["email"] == org.email
    assert body["tenant_id"] == org.tenant_id
    assert body["roles"] == ["owner"]
    assert {"create_project", "manage_members", "manage_roles"} <= set(body["permissions"])
    assert {"tenant_slug": org.slug, "tenant_id": org.tenant_id, "role": "owner"} in [
        {key: membership[key] for key in ("tenant_slug", "tenant_id", "role")} for membership in body["memberships"]
    ]


@pytest.mark.parametrize("mode", MODES)
def test_owner_creates_a_project_and_reads_it_back(
    client: httpx.Client, organizations: dict[str, Organization], mode: str
) -> None:
    org = organizations[mode]
    key = "SCH" if mode == "schema" else "DBM"
    created = project_create(client, org, key=key, name=f"First project in {mode} mode")
    assert created["key"] == key
    assert created["boards"], "a new project comes with a board"

    read = client.get(f"/api/projects/{created['id']}", headers=org.headers())
    assert read.status_code == 200, read.text
    assert read.json()["key"] == key
    assert read.json()["name"] == f"First project in {mode} mode"
    board = client.get(f"/api/boards/{created['boards'][0]['id']}", headers=org.headers())
    assert board.status_code == 200, board.text
    assert board.json()["columns"], "a new board comes with columns"
    assert key in [project["key"] for project in project_list(client, org)]


def test_projects_live_where_the_isolation_mode_says(
    client: httpx.Client, organizations: dict[str, Organization]
) -> None:
    """The rows themselves: a schema in the shared projects database, or the tenant's own database."""
    for mode, org in organizations.items():
        project_create(client, org, key="WHERE", name=f"Where {mode} lives")
    placements = {
        mode: sql_row(
            "projects",
            "SELECT schema_name, database_name FROM project_tenants_tenant WHERE tenant_id = %s AND isolation = %s",
            org.tenant_id,
            mode,
        )
        for mode, org in organizations.items()
    }
    count_where = sql.SQL("SELECT count(*) FROM {}.projects_project WHERE key = %s")

    schema_name, _ = placements["schema"]
    assert sql_row("projects", count_where.format(sql.Identifier(schema_name)), "WHERE") == (1,)

    schema_name, database_name = placements["database"]
    hex_id = organizations["database"].tenant_id.replace("-", "")
    assert database_name == f"{DB_PREFIX}tenant_{hex_id}"
    own_database = database_name.removeprefix(DB_PREFIX)
    assert sql_row(own_database, count_where.format(sql.Identifier(schema_name)), "WHERE") == (1,)
    shared = sql_row("projects", "SELECT count(*) FROM pg_namespace WHERE nspname = %s", schema_name)
    assert shared == (0,), "a database-mode tenant has no schema in the shared database"


def test_a_token_is_refused_on_another_organizations_host(
    client: httpx.Client, organizations: dict[str, Organization]
) -> None:
    schema_org, database_org = organizations["schema"], organizations["database"]
    for holder, other in ((schema_org, database_org), (database_org, schema_org)):
        foreign = {"Host": other.host, "Authorization": f"Bearer {holder.access}"}
        assert_json_error(client.get("/api/projects", headers=foreign), 403, "wrong_tenant")
        assert_json_error(client.get("/api/auth/me", headers=foreign), 403, "wrong_tenant")
        refused = client.post("/api/projects", headers=foreign, json={"key": "STEAL", "name": "Not yours"})
        assert_json_error(refused, 403, "wrong_tenant")
        assert "STEAL" not in [project["key"] for project in project_list(client, other)]


def test_organizations_do_not_see_each_others_projects(
    client: httpx.Client, organizations: dict[str, Organization], run_id: str
) -> None:
    schema_org, database_org = organizations["schema"], organizations["database"]
    only_schema = project_create(client, schema_org, key="ONLYA", name=f"Only A {run_id}")
    only_database = project_create(client, database_org, key="ONLYB", name=f"Only B {run_id}")

    schema_keys = {project["key"] for project in project_list(client, schema_org)}
    database_keys = {project["key"] for project in project_list(client, database_org)}
    assert "ONLYA" in schema_keys
    assert "ONLYA" not in database_keys
    assert "ONLYB" in database_keys
    assert "ONLYB" not in schema_keys
    # Both organizations number projects from their own sequence, so one id can name two projects:
    # asking B for A's id must give B's own project (or nothing), never A's.
    across = client.get(f"/api/projects/{only_schema['id']}", headers=database_org.headers())
    assert across.status_code in (200, 404), across.text
    if across.status_code == 200:
        assert across.json()["key"] != "ONLYA"
    else:
        assert_json_error(across, 404)
    assert only_database["key"] == "ONLYB"


@pytest.mark.parametrize(
    ("slug", "change", "status", "code"),
    [
        ("Bad_Slug", {}, 400, "invalid_slug"),
        ("ab", {}, 400, "invalid_slug"),
        ("xn--abc", {}, 400, "invalid_slug"),
        ("admin", {}, 400, "invalid_slug"),
        ("www", {}, 400, "invalid_slug"),
        ("e2e-iso-{run}", {"isolation": "cloud"}, 400, "invalid_isolation"),
        ("e2e-mail-{run}", {"owner_email": "not-an-email"}, 400, "validation_error"),
        ("e2e-name-{run}", {"name": ""}, 400, "validation_error"),
    ],
)
def test_bad_signup_is_refused_with_json_and_creates_nothing(
    client: httpx.Client, run_id: str, slug: str, change: dict, status: int, code: str
) -> None:
    slug = slug.format(run=run_id)
    before = platform_counts()
    body = {"name": "Bad", "slug": slug, "owner_email": f"bad@{run_id}.test", "owner_password": PASSWORD, **change}
    assert_json_error(client.post("/api/tenants", json=body), status, code)
    assert platform_counts() == before
    assert_json_error(client.get(f"/api/tenants/{slug.lower()}"), 404)


def test_signup_with_a_weak_password_is_refused_and_rolled_back(client: httpx.Client, run_id: str) -> None:
    slug = f"e2e-weak-{run_id}"
    before = platform_counts()
    response = client.post(
        "/api/tenants",
        json={"name": "Weak", "slug": slug, "owner_email": f"weak@{run_id}.test", "owner_password": "123"},
    )
    assert 400 <= response.status_code < 500, response.text
    assert_json_error(response, response.status_code)
    assert platform_counts() == before
    assert_json_error(client.get(f"/api/tenants/{slug}"), 404)


def test_duplicate_slug_is_refused_and_leaves_the_first_organization_alone(
    client: httpx.Client, organizations: dict[str, Organization], run_id: str
) -> None:
    org = organizations["schema"]
    before = platform_counts()
    intruder = f"intruder@{run_id}.test"
    response = client.post(
        "/api/tenants",
        json={"name": "Impostor", "slug": org.slug, "owner_email": intruder, "owner_password": PASSWORD},
    )
    assert_json_error(response, 409, "slug_taken")
    assert platform_counts() == before

    public = client.get(f"/api/tenants/{org.slug}").json()
    assert public["name"] == f"Org {org.slug}"
    assert public["id"] == org.tenant_id
    login = client.post("/api/auth/token", headers={"Host": org.host}, json={"email": intruder, "password": PASSWORD})
    assert_json_error(login, 401, "invalid_credentials")


def test_unknown_subdomain_is_a_json_404(client: httpx.Client, run_id: str) -> None:
    host = {"Host": f"nobody-{run_id}.localhost:{PORT_BASE}"}
    assert_json_error(client.get("/api/projects", headers=host), 404, "tenant_not_found")
    login = client.post("/api/auth/token", headers=host, json={"email": "a@b.test", "password": PASSWORD})
    assert_json_error(login, 404, "tenant_not_found")
    assert_json_error(client.get(f"/api/tenants/nobody-{run_id}"), 404)
