import pytest
from django.test import Client

from apps.common.auth import verify_access_token
from apps.identity.models import RefreshToken
from apps.identity.views import safe_next
from tests.identity.conftest import PASSWORD, assert_error, tenant_headers

pytestmark = pytest.mark.django_db


def _csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def _login(client: Client, org, email: str = "owner@acme.test", password: str = PASSWORD, next_url: str = ""):
    page = client.get(f"/login?next={next_url}", **tenant_headers(org))
    token = page.cookies["csrftoken"].value
    return client.post(
        "/login",
        {"email": email, "password": password, "next": next_url, "csrfmiddlewaretoken": token},
        **tenant_headers(org),
    )


def test_login_page_renders_a_form_and_sets_the_csrf_cookie(org) -> None:
    response = _csrf_client().get("/login", **tenant_headers(org))

    assert response.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in response.content
    assert b"Sign in to acme" in response.content
    assert not response.cookies["csrftoken"]["httponly"]


def test_login_sets_both_token_cookies_and_redirects(org, owner) -> None:
    response = _login(_csrf_client(), org, next_url="/boards/7/")

    assert response.status_code == 302
    assert response["Location"] == "/boards/7/"
    access, refresh = response.cookies["access_token"], response.cookies["refresh_token"]
    assert access["httponly"] and access["samesite"] == "Lax" and access["path"] == "/"
    assert refresh["httponly"] and refresh["samesite"] == "Strict" and refresh["path"] == "/api/auth"
    assert not access["secure"]  # DEBUG; Secure when DEBUG is off (AUTH_COOKIE_SECURE)
    assert verify_access_token(access.value, tenant_id=str(org.id)).user_id == str(owner.user_id)


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.test/",
        "//evil.test/x",
        "/\\evil.test",
        "javascript:alert(1)",
        "",
        "projects",
        "/%0d%0aSet-Cookie:x",
    ],
)
def test_login_never_redirects_off_this_host(org, owner, next_url) -> None:
    response = _login(_csrf_client(), org, next_url=next_url)

    assert response.status_code == 302
    assert response["Location"].startswith("/")
    assert not response["Location"].startswith("//")


def test_safe_next_keeps_same_host_paths() -> None:
    assert safe_next("/projects/3/?tab=board#top") == "/projects/3/?tab=board#top"
    assert safe_next(None) == "/projects/"


def test_wrong_password_renders_the_form_again(org, owner) -> None:
    response = _login(_csrf_client(), org, password="wrong-password-1")

    assert response.status_code == 401
    assert b"Email or password is incorrect" in response.content
    assert "access_token" not in response.cookies


def test_login_post_without_csrf_token_is_refused_as_json(org, owner) -> None:
    response = _csrf_client().post("/login", {"email": "owner@acme.test", "password": PASSWORD}, **tenant_headers(org))

    assert_error(response, 403, "csrf_failed")
    assert RefreshToken.objects.count() == 0


def test_login_on_the_apex_explains_where_to_sign_in(owner) -> None:
    client = _csrf_client()
    token = client.get("/login").cookies["csrftoken"].value

    response = client.post("/login", {"email": "owner@acme.test", "password": PASSWORD, "csrfmiddlewaretoken": token})

    assert response.status_code == 400
    assert b"organization&#x27;s address" in response.content


def test_logout_revokes_the_session_and_clears_cookies(org, owner) -> None:
    client = _csrf_client()
    _login(client, org)
    token = client.cookies["csrftoken"].value

    response = client.post("/logout", {"csrfmiddlewaretoken": token}, **tenant_headers(org))

    assert response.status_code == 302
    assert response.cookies["access_token"].value == ""
    assert response.cookies["refresh_token"].value == ""
    assert RefreshToken.objects.filter(revoked_at=None).count() == 0


def test_cookie_refresh_needs_the_csrf_header(org, owner) -> None:
    client = _csrf_client()
    _login(client, org)

    refused = client.post("/api/auth/refresh", {}, content_type="application/json", **tenant_headers(org))
    accepted = client.post(
        "/api/auth/refresh",
        {},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
        **tenant_headers(org),
    )

    assert_error(refused, 403, "csrf_failed")
    assert accepted.status_code == 200
    assert accepted.cookies["refresh_token"].value == accepted.json()["refresh"]


def test_cookie_authenticated_me_works_for_reads(org, owner) -> None:
    client = _csrf_client()
    _login(client, org)

    assert client.get("/api/auth/me", **tenant_headers(org)).json()["email"] == "owner@acme.test"


def test_an_expired_session_resumes_from_the_refresh_cookie(org, owner) -> None:
    client = _csrf_client()
    _login(client, org)
    old_refresh = client.cookies["refresh_token"].value

    response = client.get("/api/auth/resume", {"next": "/boards/3/?q=x"}, **tenant_headers(org))

    assert response.status_code == 302
    assert response["Location"] == "/boards/3/?q=x"
    new_access = response.cookies["access_token"].value
    assert verify_access_token(new_access, tenant_id=str(org.id)).user_id == str(owner.user_id)
    assert response.cookies["refresh_token"].value not in ("", old_refresh)
    assert RefreshToken.objects.filter(used_at__isnull=False).count() == 1


def test_resume_without_a_refresh_cookie_goes_to_the_login_form(org, owner) -> None:
    response = Client().get("/api/auth/resume", {"next": "/boards/3/"}, **tenant_headers(org))

    assert response.status_code == 302
    assert response["Location"] == "/login?next=%2Fboards%2F3%2F"


def test_resume_with_a_used_refresh_cookie_signs_out_and_revokes_the_family(org, owner) -> None:
    client = _csrf_client()
    _login(client, org)
    stolen = client.cookies["refresh_token"].value
    client.get("/api/auth/resume", **tenant_headers(org))
    client.cookies["refresh_token"] = stolen

    response = client.get("/api/auth/resume", {"next": "//evil.example/"}, **tenant_headers(org))

    assert response["Location"] == "/login?next=%2Fprojects%2F"
    assert response.cookies["refresh_token"].value == ""
    assert RefreshToken.objects.filter(revoked_at=None).count() == 0
