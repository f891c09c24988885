import uuid

import pytest
from django.test import Client

from apps.projects.tenants.context import current_tenant, tenant_alias
from apps.projects.tenants.models import ProvisioningStatus, Tenant

pytestmark = pytest.mark.urls("tests.provisioning.urls")


@pytest.fixture
def client() -> Client:
    # Unsafe methods without CSRF: the gateway and token auth stand in front of these views.
    return Client(enforce_csrf_checks=False)


def test_x_tenant_id_routes_each_request_to_its_tenants_storage(client: Client, new_tenant) -> None:
    schema_tenant, database_tenant = new_tenant(), new_tenant(isolation="database")

    client.post("/probe?mark=schema1", HTTP_X_TENANT_ID=str(schema_tenant.tenant_id))
    client.post("/probe?mark=database1", HTTP_X_TENANT_ID=str(database_tenant.tenant_id))
    schema_view = client.get("/probe", HTTP_X_TENANT_ID=str(schema_tenant.tenant_id)).json()
    database_view = client.get("/probe", HTTP_X_TENANT_ID=str(database_tenant.tenant_id)).json()

    assert schema_view == {"tenant": schema_tenant.slug, "database": "default", "marks": ["schema1"]}
    assert database_view == {
        "tenant": database_tenant.slug,
        "database": tenant_alias(database_tenant),
        "marks": ["database1"],
    }
    assert current_tenant() is None  # nothing leaks past the request


def test_the_host_names_the_tenant_when_no_header_is_sent(client: Client, new_tenant) -> None:
    tenant = new_tenant(isolation="database")

    response = client.get("/probe", HTTP_HOST=f"{tenant.slug}.localhost:8000")

    assert response.status_code == 200
    assert response.json()["tenant"] == tenant.slug


@pytest.mark.parametrize("header", [str(uuid.uuid4()), "not-a-uuid", "' OR 1=1 --"])
def test_an_unknown_tenant_id_gets_a_json_404(client: Client, header: str) -> None:
    response = client.get("/probe", HTTP_X_TENANT_ID=header)

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "tenant_not_found"
    assert error["request_id"] == response["X-Request-ID"]


def test_a_tenant_still_provisioning_gets_a_json_503(client: Client, new_tenant) -> None:
    tenant = new_tenant()
    Tenant.objects.filter(pk=tenant.pk).update(status=ProvisioningStatus.PROVISIONING)

    response = client.get("/probe", HTTP_X_TENANT_ID=str(tenant.tenant_id))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "tenant_not_ready"


def test_health_answers_on_the_apex_without_a_tenant(client: Client) -> None:
    response = client.get("/probe", HTTP_HOST="localhost")

    assert response.status_code == 200
    assert response.json()["tenant"] is None
