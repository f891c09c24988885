import uuid

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from apps.tenancy import services
from apps.tenancy.models import Tenant, TenantStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client: Client) -> Client:
    staff = User.objects.create_superuser("ops", "ops@platform.test", "ops-pass-123456")
    client.force_login(staff)
    return client


def test_staff_see_tenants_placements_and_provisioning_state(staff_client: Client) -> None:
    for path in ["/admin/tenancy/tenant/", "/admin/tenancy/placement/", "/admin/tenancy/domain/"]:
        assert staff_client.get(path).status_code == 200


def test_anonymous_visitors_are_sent_to_the_admin_login(client: Client) -> None:
    response = client.get("/admin/tenancy/tenant/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_retry_provisioning_action_requests_provisioning_again(staff_client: Client, identity: str) -> None:
    slug = f"retry-{uuid.uuid4().hex[:6]}"
    tenant = services.tenant_signup(
        name="Retry", slug=slug, owner_email=f"{slug}@retry.test", owner_password="correct-horse-battery-9"
    )
    services.tenant_mark_failed(tenant_id=str(tenant.id), reason="boom")

    response = staff_client.post(
        "/admin/tenancy/tenant/", {"action": "retry_provisioning", "_selected_action": [str(tenant.id)]}
    )

    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.PROVISIONING
    assert tenant.provisioning_attempts == 2


def test_seed_demo_refuses_outside_development(settings) -> None:
    settings.DEMO_SEED_ALLOWED = False

    with pytest.raises(CommandError, match="development only"):
        call_command("seed_demo")

    assert not Tenant.objects.filter(slug="demo").exists()


def test_seed_demo_creates_the_demo_tenant_once(identity: str) -> None:
    call_command("seed_demo")
    call_command("seed_demo")

    demo = Tenant.objects.get(slug="demo")
    assert demo.owner_email == "owner@demo.test"
    assert demo.isolation == "schema"
