"""The apex's landing page, its signup form (`POST /signup`) and a new organization's status page.

Signup calls the real identity service (tests/tenancy/conftest.py); what identity stored is
read from its own database.
"""

import re
import uuid
from html import unescape

import pytest
from django.conf import settings
from django.test import Client

from apps.tenancy import services
from apps.tenancy.models import Domain, Tenant

pytestmark = pytest.mark.django_db

PASSWORD = "a-strong-pass-4821"
APEX = {"HTTP_HOST": "localhost:19000"}
JSON = {"HTTP_ACCEPT": "application/json"}


def _form(**overrides: str) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    return {
        "name": "Acme Inc",
        "slug": f"acme-{run}",
        "owner_name": "Ana Lima",
        "owner_email": f"ana-{run}@acme.test",
        "owner_password": PASSWORD,
        **overrides,
    }


def _post(client: Client, form: dict[str, str], **extra: str):
    return client.post("/signup", form, **APEX, **extra)


def _field_errors(html: str, field: str) -> str:
    match = re.search(rf'id="{field}-error"[^>]*>(.*?)</(?:p|ul)>', html, re.S)
    assert match, f"no error slot for {field}"
    return unescape(re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def _input_value(html: str, field: str) -> str | None:
    match = re.search(rf'<input[^>]*id="id_{field}"[^>]*>', html, re.S)
    assert match, f"no input for {field}"
    value = re.search(r'value="([^"]*)"', match.group(0))
    return unescape(value.group(1)) if value else None


def _assert_nothing_created() -> None:
    assert Tenant.objects.count() == 0
    assert Domain.objects.count() == 0


def test_the_landing_page_has_the_signup_form_and_sets_a_csrf_cookie(client: Client) -> None:
    response = client.get("/", **APEX, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    html = response.content.decode()
    assert response.cookies[settings.CSRF_COOKIE_NAME].value
    assert 'name="csrfmiddlewaretoken"' in html
    for field in ("name", "slug", "owner_name", "owner_email", "owner_password"):
        assert f'<label for="id_{field}">' in html
        assert f'id="id_{field}"' in html
    # The address the subdomain makes, on the port the page was asked on.
    assert ".localhost:19000" in html
    assert 'aria-live="polite"' in html
    # CSP: no inline script or style (scripts and styles come from /static/).
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert " style=" not in html and "<style" not in html
    assert "Content-Security-Policy" in response.headers


def test_get_signup_goes_back_to_the_form(client: Client) -> None:
    response = client.get("/signup", **APEX)

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_a_post_without_the_csrf_token_is_refused_and_creates_nothing(identity: str) -> None:
    browser = Client(enforce_csrf_checks=True)

    response = browser.post("/signup", _form(), **APEX, HTTP_ACCEPT="text/html")

    assert response.status_code == 403
    assert "text/html" in response["Content-Type"]
    _assert_nothing_created()


def test_a_post_with_the_pages_csrf_token_signs_up(identity: str) -> None:
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/", **APEX)
    token = page.cookies[settings.CSRF_COOKIE_NAME].value

    response = browser.post("/signup", {**_form(), "csrfmiddlewaretoken": token}, **APEX)

    assert response.status_code == 303
    assert Tenant.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"name": ""}, "name", "Name your organization"),
        ({"name": "x" * 10_240}, "name", "at most 200 characters"),
        ({"slug": ""}, "slug", "Choose a subdomain"),
        ({"slug": "admin"}, "slug", "reserved"),
        ({"slug": "www"}, "slug", "reserved"),
        ({"slug": "-x"}, "slug", "3 to 40 characters"),
        ({"slug": "-acme"}, "slug", "DNS label"),
        ({"slug": "ünïcødé"}, "slug", "DNS label"),
        ({"slug": "Acme"}, "slug", "lowercase"),
        ({"slug": "x" * 10_240}, "slug", "at most 100 characters"),
        ({"owner_name": ""}, "owner_name", "Enter your name"),
        ({"owner_name": "n" * 10_240}, "owner_name", "at most 200 characters"),
        ({"owner_email": "not-an-email"}, "owner_email", "valid email"),
        ({"owner_email": "e" * 10_240 + "@x.test"}, "owner_email", "at most 254 characters"),
        ({"owner_password": ""}, "owner_password", "Choose a password"),
        ({"owner_password": "123"}, "owner_password", "too short"),
        ({"owner_password": "password123"}, "owner_password", "too common"),
        ({"owner_password": "p" * 10_240}, "owner_password", "at most 1024 characters"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_keeps_what_was_typed_and_creates_nothing(
    client: Client, identity: str, overrides: dict[str, str], field: str, says: str
) -> None:
    form = _form(**overrides)

    response = _post(client, form, HTTP_ACCEPT="text/html")

    assert response.status_code == 400
    html = response.content.decode()
    assert says in _field_errors(html, field)
    assert re.search(rf'id="id_{field}"[^>]*aria-invalid="true"', html)
    for kept in ("name", "slug", "owner_name", "owner_email"):
        assert _input_value(html, kept) == form[kept]
    assert _input_value(html, "owner_password") is None  # never sent back
    if form["owner_password"]:
        assert form["owner_password"] not in html
    _assert_nothing_created()


def test_the_password_rules_are_identitys_and_all_of_them_are_listed(client: Client, identity: str) -> None:
    form = _form(owner_password="12345678")

    html = _post(client, form).content.decode()

    errors = _field_errors(html, "owner_password")
    assert "too short" in errors and "too common" in errors and "entirely numeric" in errors
    _assert_nothing_created()


def test_a_password_like_the_owners_name_is_refused(client: Client, identity: str) -> None:
    form = _form(owner_name="Bartholomew Quince", owner_password="bartholomew-quince")

    html = _post(client, form).content.decode()

    assert "too similar" in _field_errors(html, "owner_password")
    _assert_nothing_created()


def test_a_taken_slug_is_shown_on_the_slug_field_and_the_first_organization_is_untouched(
    client: Client, identity: str
) -> None:
    first = _form()
    assert _post(client, first).status_code == 303

    second = _form(slug=first["slug"], name="Impostor")
    response = _post(client, second)

    assert response.status_code == 409
    assert f"{first['slug']}.localhost:19000 is taken" in _field_errors(response.content.decode(), "slug")
    assert Tenant.objects.get(slug=first["slug"]).name == "Acme Inc"
    assert Tenant.objects.count() == 1


def test_signup_creates_the_organization_and_an_owner_named_as_typed(
    client: Client, identity_user, identity_organization
) -> None:
    form = _form(owner_name="Ana Lima")

    response = _post(client, form)

    assert response.status_code == 303
    assert response["Location"] == f"/signup/{form['slug']}"
    tenant = Tenant.objects.get(slug=form["slug"])
    assert tenant.name == "Acme Inc"
    assert tenant.owner_email == form["owner_email"]
    owner = identity_user(form["owner_email"])
    assert owner == {"full_name": "Ana Lima", "email_verified_at": None}  # the mailed link verifies it
    # Identity names the organization too, so its mails and pages say "Acme Inc", not the slug.
    assert identity_organization(form["slug"]) == {"id": str(tenant.id), "name": "Acme Inc"}


def test_the_status_page_shows_the_address_on_the_requests_port_and_where_the_mail_went(
    client: Client, identity: str
) -> None:
    form = _form()
    _post(client, form)

    page = client.get(f"/signup/{form['slug']}", **APEX)

    assert page.status_code == 200
    html = page.content.decode()
    address = f"http://{form['slug']}.localhost:19000/"
    assert f'href="{address}"' in html
    assert f'href="{address}login"' in html
    assert "Sign in to Acme Inc" in html
    assert re.search(r'id="sign-in"[^>]*hidden', html), "not before the organization is active"
    assert "Setting up" in html
    assert form["owner_email"] in html
    assert 'role="status"' in html and 'aria-live="polite"' in html
    assert f'data-status-url="/api/tenants/{form["slug"]}"' in html


def test_the_status_page_tells_nobody_else_the_owners_address(client: Client, identity: str) -> None:
    form = _form()
    _post(client, form)

    html = Client().get(f"/signup/{form['slug']}", **APEX).content.decode()

    assert form["owner_email"] not in html
    assert "the owner's address" in html


def test_the_status_page_offers_sign_in_once_active_and_says_what_to_do_when_failed(
    client: Client, identity: str
) -> None:
    form = _form()
    _post(client, form)
    tenant = Tenant.objects.get(slug=form["slug"])

    services.tenant_mark_active(tenant_id=str(tenant.id))
    active = client.get(f"/signup/{form['slug']}", **APEX).content.decode()
    assert not re.search(r'id="sign-in"[^>]*hidden', active)
    assert "ready" in active
    assert re.search(r'id="status-failed-help"[^>]*hidden', active)

    other = _form()
    _post(client, other)
    failed_tenant = Tenant.objects.get(slug=other["slug"])
    services.tenant_mark_failed(tenant_id=str(failed_tenant.id), reason="template database missing")
    failed = client.get(f"/signup/{other['slug']}", **APEX).content.decode()
    assert "template database missing" in failed
    assert not re.search(r'id="status-failed-help"[^>]*hidden', failed)
    assert re.search(r'id="sign-in"[^>]*hidden', failed)


def test_the_status_page_of_an_unknown_organization_is_an_html_404(client: Client) -> None:
    response = client.get("/signup/nobody-here", **APEX, HTTP_ACCEPT="text/html")

    assert response.status_code == 404
    assert "text/html" in response["Content-Type"]


def test_a_script_in_the_organizations_name_is_text_everywhere(client: Client, identity: str) -> None:
    name = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    form = _form(name=name)
    assert _post(client, form).status_code == 303

    for html in (
        client.get(f"/signup/{form['slug']}", **APEX).content.decode(),
        _post(client, _form(name=name, slug="www")).content.decode(),
    ):
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert" in html


def test_the_form_answers_json_for_the_pages_script(client: Client, identity: str) -> None:
    form = _form()

    created = _post(client, form, **JSON)
    refused = _post(client, _form(slug="admin", owner_password="123"), **JSON)

    assert created.status_code == 201
    assert created.json()["next"] == f"/signup/{form['slug']}"
    assert created.json()["status"] == "provisioning"
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "validation_error" or error["code"] == "invalid_slug"
    assert "reserved" in " ".join(error["fields"]["slug"])
    assert error["request_id"] == refused["X-Request-ID"]
    assert Tenant.objects.count() == 1


def test_the_form_is_no_oracle_for_existing_addresses_or_their_passwords(client: Client, identity: str) -> None:
    """An address with an account gets the very answer a new one gets, whatever password is typed."""
    first = _form()
    assert _post(client, first).status_code == 303

    answers = []
    for form in (
        _form(),  # a new address
        _form(owner_email=first["owner_email"]),  # an existing one, its own password
        _form(owner_email=first["owner_email"], owner_password="another-pass-8812"),  # a wrong one
    ):
        response = _post(client, form)
        page = Client().get(response["Location"], **APEX).content.decode()
        answers.append((response.status_code, page.replace(form["slug"], "SLUG")))

    assert len(set(answers)) == 1, answers
    assert answers[0][0] == 303


def test_identity_unreachable_is_a_message_above_the_form_not_an_error_page(client: Client, settings) -> None:
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "identity": "http://127.0.0.1:9"}
    form = _form()

    response = _post(client, form)

    assert response.status_code == 503
    html = response.content.decode()
    assert "could not be created just now" in html
    assert _input_value(html, "slug") == form["slug"]
    _assert_nothing_created()
