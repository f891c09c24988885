import uuid

import pytest
from django.test import Client

from apps.common.exceptions import Conflict
from apps.tenancy import services
from apps.tenancy.models import Domain, Tenant, TenantStatus

pytestmark = pytest.mark.django_db


def _signup(client: Client, **overrides: object):
    body = {
        "name": "Acme Inc",
        "slug": f"acme-{uuid.uuid4().hex[:8]}",
        "owner_email": f"owner-{uuid.uuid4().hex[:8]}@acme.test",
        "owner_password": "correct-horse-battery-9",
        **overrides,
    }
    return client.post("/api/tenants", body, content_type="application/json"), body


def _assert_nothing_created() -> None:
    assert Tenant.objects.count() == 0
    assert Domain.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"slug": "Acme"}, 400, "invalid_slug"),
        ({"slug": "ab"}, 400, "invalid_slug"),
        ({"slug": "www"}, 400, "invalid_slug"),
        ({"slug": "admin"}, 400, "invalid_slug"),
        ({"slug": "bad_slug"}, 400, "invalid_slug"),
        ({"slug": "x" * 41}, 400, "invalid_slug"),
        ({"isolation": "cluster"}, 400, "invalid_isolation"),
        ({"owner_email": "not-an-email"}, 400, "validation_error"),
        ({"name": ""}, 400, "validation_error"),
        ({"owner_password": None}, 400, "validation_error"),
    ],
)
def test_bad_signups_get_a_json_error_and_create_nothing(
    client: Client, overrides: dict, status: int, code: str
) -> None:
    response, _ = _signup(client, **overrides)

    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response["X-Request-ID"]
    _assert_nothing_created()


def test_a_body_that_is_not_json_gets_a_json_400(client: Client) -> None:
    response = client.post("/api/tenants", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert "error" in response.json()
    _assert_nothing_created()


def test_signup_while_identity_is_down_gets_a_503_and_creates_nothing(client: Client, settings) -> None:
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "identity": "http://127.0.0.1:9"}

    response, _ = _signup(client)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "identity_unavailable"
    _assert_nothing_created()


def test_a_weak_owner_password_is_identitys_400_and_creates_nothing(client: Client, identity: str) -> None:
    response, _ = _signup(client, owner_password="123")

    assert response.status_code == 400
    assert response.json()["error"]["message"]
    _assert_nothing_created()


def test_signup_creates_the_tenant_its_domain_and_its_owner(client: Client, identity: str) -> None:
    response, body = _signup(client, isolation="database")

    assert response.status_code == 201
    created = response.json()
    assert created["status"] == "provisioning"
    assert created["isolation"] == "database"
    assert created["failure_reason"] is None
    tenant = Tenant.objects.get(slug=body["slug"])
    assert str(tenant.id) == created["id"]
    assert tenant.owner_user_id
    assert tenant.placement.name == "default"
    assert Domain.objects.get(tenant=tenant).domain == f"{body['slug']}.localhost"


def test_a_taken_slug_gets_a_409_and_changes_nothing(client: Client, identity: str) -> None:
    first, body = _signup(client)
    assert first.status_code == 201

    second, _ = _signup(client, slug=body["slug"], name="Someone else")

    assert second.status_code == 409
    assert second.json()["error"]["code"] == "slug_taken"
    assert Tenant.objects.get(slug=body["slug"]).name == "Acme Inc"


def test_public_status_follows_provisioning_to_active(client: Client, identity: str) -> None:
    _, body = _signup(client)
    tenant = Tenant.objects.get(slug=body["slug"])

    services.tenant_mark_active(tenant_id=str(tenant.id), schema_version="abc")
    response = client.get(f"/api/tenants/{body['slug']}")

    assert response.status_code == 200
    assert response.json() == {
        "id": str(tenant.id),
        "slug": body["slug"],
        "name": "Acme Inc",
        "status": "active",
        "isolation": "schema",
        "failure_reason": None,
    }


def test_a_failed_tenant_reports_why_and_can_be_retried(client: Client, identity: str) -> None:
    _, body = _signup(client)
    tenant = Tenant.objects.get(slug=body["slug"])

    services.tenant_mark_failed(tenant_id=str(tenant.id), reason="OperationalError: server closed the connection")
    failed = client.get(f"/api/tenants/{body['slug']}").json()
    retried = services.tenant_provisioning_retry(tenant=tenant)

    assert failed["status"] == "failed"
    assert "server closed" in failed["failure_reason"]
    assert retried.status == TenantStatus.PROVISIONING
    assert retried.provisioning_attempts == 2
    assert retried.failure_reason == ""


def test_an_active_tenant_is_not_retried_and_a_late_failure_does_not_undo_it(client: Client, identity: str) -> None:
    _, body = _signup(client)
    tenant = services.tenant_mark_active(tenant_id=str(Tenant.objects.get(slug=body["slug"]).id))

    services.tenant_mark_failed(tenant_id=str(tenant.id), reason="stale report")
    with pytest.raises(Conflict) as refused:
        services.tenant_provisioning_retry(tenant=tenant)
    assert refused.value.code == "not_retryable"

    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.ACTIVE


def test_status_of_an_unknown_tenant_is_a_json_404(client: Client) -> None:
    response = client.get("/api/tenants/nobody-here")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_owners_name_reaches_identitys_owner_account(client: Client, identity_user) -> None:
    response, body = _signup(client, owner_name="Ana Lima")

    assert response.status_code == 201
    assert identity_user(body["owner_email"])["full_name"] == "Ana Lima"


def test_the_older_owner_full_name_field_still_names_the_owner(client: Client, identity_user) -> None:
    response, body = _signup(client, owner_full_name="Bruno Costa")

    assert response.status_code == 201
    assert identity_user(body["owner_email"])["full_name"] == "Bruno Costa"


def test_an_owner_name_over_200_characters_is_refused_and_creates_nothing(client: Client, identity: str) -> None:
    response, _ = _signup(client, owner_name="n" * 201)

    assert response.status_code == 400
    assert "owner_name" in response.json()["error"]["fields"]
    _assert_nothing_created()
