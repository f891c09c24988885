import pytest
from django.test import Client

from apps.identity.models import Membership, Role, User
from tests.identity.conftest import PASSWORD, tenant_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_orgs(make_org, make_member):
    acme, globex = make_org("acme"), make_org("globex")
    make_member(acme, "boss@acme.test", role="admin")
    make_member(acme, "dev@acme.test")
    make_member(globex, "boss@globex.test", role="owner")
    make_member(globex, "secret@globex.test")
    return acme, globex


def _admin_login(client: Client, org, email: str, password: str = PASSWORD):
    headers = tenant_headers(org) if org is not None else {}
    return client.post("/admin/login/?next=/admin/", {"username": email, "password": password}, **headers)


def test_org_admin_sees_only_their_organizations_users(client: Client, two_orgs) -> None:
    acme, _ = two_orgs
    assert _admin_login(client, acme, "boss@acme.test").status_code == 302

    page = client.get("/admin/identity/user/", **tenant_headers(acme))

    assert page.status_code == 200
    assert b"dev@acme.test" in page.content
    assert b"globex.test" not in page.content


def test_org_admin_cannot_open_another_organizations_user(client: Client, two_orgs) -> None:
    acme, _ = two_orgs
    _admin_login(client, acme, "boss@acme.test")
    stranger = User.objects.get(email="secret@globex.test")
    membership = Membership.objects.get(user=stranger)

    user_page = client.get(f"/admin/identity/user/{stranger.pk}/change/", **tenant_headers(acme))
    membership_page = client.get(f"/admin/identity/membership/{membership.pk}/change/", **tenant_headers(acme))

    # The admin redirects to the index with "doesn't exist" for objects outside the queryset.
    assert user_page.status_code == 302 and membership_page.status_code == 302
    assert b"globex" not in client.get("/admin/identity/role/", **tenant_headers(acme)).content


def test_session_carried_to_another_tenant_opens_nothing(client: Client, two_orgs) -> None:
    acme, globex = two_orgs
    _admin_login(client, acme, "boss@acme.test")

    response = client.get("/admin/identity/user/", **tenant_headers(globex))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_plain_members_and_outsiders_cannot_sign_in(client: Client, two_orgs) -> None:
    acme, globex = two_orgs

    assert _admin_login(client, acme, "dev@acme.test").status_code == 200  # form again, with an error
    assert _admin_login(client, globex, "boss@acme.test").status_code == 200
    assert _admin_login(client, None, "boss@acme.test").status_code == 200
    assert client.get("/admin/", **tenant_headers(acme)).status_code == 302


def test_platform_staff_sees_everything(client: Client, two_orgs) -> None:
    User.objects.create_superuser("staff@platform.test", PASSWORD, is_staff=True)
    assert _admin_login(client, None, "staff@platform.test").status_code == 302

    page = client.get("/admin/identity/user/")

    assert b"dev@acme.test" in page.content and b"secret@globex.test" in page.content
    assert client.get("/admin/identity/signingkey/").status_code == 200


def test_org_admin_cannot_reach_platform_models(client: Client, two_orgs) -> None:
    acme, _ = two_orgs
    _admin_login(client, acme, "boss@acme.test")

    assert client.get("/admin/identity/signingkey/", **tenant_headers(acme)).status_code == 403
    assert client.get("/admin/identity/organization/", **tenant_headers(acme)).status_code == 403


def test_org_admin_changes_a_role_through_the_service(client: Client, two_orgs) -> None:
    acme, globex = two_orgs
    _admin_login(client, acme, "boss@acme.test")
    dev = Membership.objects.get(user__email="dev@acme.test")
    viewer = Role.objects.get(organization=acme, name="viewer")
    foreign_role = Role.objects.get(organization=globex, name="admin")

    refused = client.post(
        f"/admin/identity/membership/{dev.pk}/change/", {"role": foreign_role.pk}, **tenant_headers(acme)
    )
    accepted = client.post(f"/admin/identity/membership/{dev.pk}/change/", {"role": viewer.pk}, **tenant_headers(acme))

    assert refused.status_code == 200  # the form again: a role of another organization is not a choice
    assert accepted.status_code == 302
    assert Membership.objects.get(pk=dev.pk).role == viewer


def test_org_admin_edits_role_permissions(client: Client, two_orgs) -> None:
    acme, _ = two_orgs
    _admin_login(client, acme, "boss@acme.test")
    member_role = Role.objects.get(organization=acme, name="member")

    response = client.post(
        f"/admin/identity/role/{member_role.pk}/change/",
        {"permissions": ["comment", "log_work"]},
        **tenant_headers(acme),
    )

    assert response.status_code == 302
    assert Role.objects.get(pk=member_role.pk).permissions == ["comment", "log_work"]


def test_org_admin_removes_a_member_but_not_the_last_owner(client: Client, two_orgs, make_member) -> None:
    acme, _ = two_orgs
    owner = make_member(acme, "founder@acme.test", role="owner")
    _admin_login(client, acme, "boss@acme.test")
    dev = Membership.objects.get(user__email="dev@acme.test")

    removed = client.post(f"/admin/identity/membership/{dev.pk}/delete/", {"post": "yes"}, **tenant_headers(acme))
    kept = client.post(f"/admin/identity/membership/{owner.pk}/delete/", {"post": "yes"}, **tenant_headers(acme))

    assert removed.status_code == 302 and not Membership.objects.filter(pk=dev.pk).exists()
    assert kept.status_code == 302 and Membership.objects.filter(pk=owner.pk).exists()


def test_admin_login_failures_are_throttled(client: Client, two_orgs) -> None:
    acme, _ = two_orgs
    for _ in range(5):
        _admin_login(client, acme, "boss@acme.test", "wrong-password-1")

    response = _admin_login(client, acme, "boss@acme.test")

    assert response.status_code == 200
    assert b"Too many failed sign-in attempts" in response.content
    assert "sessionid" not in response.cookies
