"""`GET /api/tenants/availability?slug=`: the signup form's live check, on signup's own rules."""

import uuid

import pytest
from django.test import Client

from apps.tenancy import services
from apps.tenancy.slugs import slug_check

pytestmark = pytest.mark.django_db


def _availability(client: Client, slug: str):
    return client.get("/api/tenants/availability", {"slug": slug})


def test_a_free_slug_is_available(client: Client, django_assert_max_num_queries) -> None:
    slug = f"free-{uuid.uuid4().hex[:8]}"

    with django_assert_max_num_queries(1):
        response = _availability(client, slug)

    assert response.status_code == 200
    assert response.json() == {"slug": slug, "available": True, "code": None, "reason": None}


def test_a_taken_slug_is_not_available_and_says_so(client: Client, identity: str) -> None:
    slug = f"taken-{uuid.uuid4().hex[:8]}"
    services.tenant_signup(
        name="Taken", slug=slug, owner_email=f"{slug}@corp.test", owner_password="a-strong-pass-4821"
    )

    answer = _availability(client, slug).json()

    assert answer == {"slug": slug, "available": False, "code": "taken", "reason": f"{slug}.localhost is taken"}


@pytest.mark.parametrize(
    ("slug", "code"),
    [
        ("", "required"),
        ("ab", "too_short"),
        ("-x", "too_short"),
        ("x" * 41, "too_long"),
        ("Acme", "uppercase"),
        ("-acme", "invalid_characters"),
        ("acme-", "invalid_characters"),
        ("ac_me", "invalid_characters"),
        ("acmé", "invalid_characters"),
        ("\uff41\uff43\uff4d\uff45", "invalid_characters"),  # fullwidth letters
        ("acme corp", "invalid_characters"),
        ("<script>", "invalid_characters"),
        ("xn--acme", "idn"),
        ("admin", "reserved"),
        ("www", "reserved"),
        ("api", "reserved"),
        ("availability", "reserved"),
    ],
)
def test_a_slug_signup_would_refuse_is_not_available_with_signups_reason(client: Client, slug: str, code: str) -> None:
    response = _availability(client, slug)

    assert response.status_code == 200
    answer = response.json()
    assert answer["available"] is False
    assert answer["code"] == code
    assert answer["slug"] == slug
    # The very sentence signup answers with (one rule set, apps/tenancy/slugs.py).
    problem = slug_check(slug)
    assert problem is not None and answer["reason"] == problem.message


def test_signup_refuses_what_availability_refuses_with_the_same_sentence(client: Client) -> None:
    reason = _availability(client, "www").json()["reason"]

    signup = client.post(
        "/api/tenants",
        {"name": "W", "slug": "www", "owner_email": "w@corp.test", "owner_password": "a-strong-pass-4821"},
        content_type="application/json",
    )

    assert signup.status_code == 400
    error = signup.json()["error"]
    assert error["code"] == "invalid_slug"
    assert error["fields"] == {"slug": [reason]}
    assert error["reason"] == "reserved"


def test_a_10_kb_slug_is_a_validation_error_not_an_echo(client: Client) -> None:
    response = _availability(client, "a" * 10_240)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "slug" in error["fields"]
    assert "a" * 200 not in response.content.decode()


def test_without_a_slug_it_names_no_tenant(client: Client) -> None:
    """The path is also `/api/tenants/<slug>` for "availability": the gateway's tenant lookup of
    availability.localhost must hear "no such tenant", not a 400 it would turn into a 503."""
    response = client.get("/api/tenants/availability")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
