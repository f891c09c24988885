"""Browser pages: sign in, sign out, accept an invitation, verify an address. Thin: forms in, services, cookies out."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from apps.common.auth import tenant_id_from_request
from apps.common.exceptions import ServiceError
from apps.common.http import client_ip
from apps.identity import selectors, services
from apps.identity.cookies import ACCESS_COOKIE, REFRESH_COOKIE, clear_auth_cookies, set_auth_cookies
from apps.identity.errors import InvalidCredentials, LoginThrottled
from apps.identity.forms import EmailVerifyForm, InvitationAcceptForm, LoginForm, VerificationResendForm
from apps.identity.tokens import access_token_presented
from apps.identity.verification import verification_token_user

DEFAULT_NEXT = "/projects/"


def safe_next(value: object) -> str:
    """Only a path on this same host: an absolute or scheme-relative URL would make us an open redirect."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith(("//", "/\\")):
        return DEFAULT_NEXT
    if any(ord(ch) < 32 or ch == "\\" for ch in value):
        return DEFAULT_NEXT
    if not url_has_allowed_host_and_scheme(value, allowed_hosts=set()):
        return DEFAULT_NEXT
    return value


def _with_headers(response: HttpResponse, exc: ServiceError) -> HttpResponse:
    """The refusal's headers (Retry-After) on the page that shows it."""
    for name, value in exc.headers.items():
        response[name] = value
    return response


@ensure_csrf_cookie
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request.POST.get("next") or request.GET.get("next"))
    tenant_id = tenant_id_from_request(request)
    context = {
        "next": next_url,
        "has_tenant": tenant_id is not None,
        "tenant_slug": request.headers.get("X-Tenant-Slug"),
    }
    if request.method == "GET":
        form = LoginForm(initial={"next": next_url, "email": request.GET.get("email", "")})
        return render(request, "identity/login.html", {**context, "form": form})

    form = LoginForm(request.POST)
    if tenant_id is None:
        context["error"] = "Sign in on your organization's address, for example acme.localhost:8000/login."
        return render(request, "identity/login.html", {**context, "form": form}, status=400)
    if not form.is_valid():
        return render(request, "identity/login.html", {**context, "form": form}, status=400)
    try:
        membership = services.login_authenticate(
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password"],
            tenant_id=tenant_id,
            ip=client_ip(request),
        )
        pair = services.token_pair_issue(membership=membership)
    except LoginThrottled as exc:
        response = render(request, "identity/login.html", {**context, "form": form, "error": exc.message}, status=429)
        return _with_headers(response, exc)
    except InvalidCredentials as exc:
        return render(request, "identity/login.html", {**context, "form": form, "error": exc.message}, status=401)
    response = HttpResponseRedirect(next_url)
    set_auth_cookies(response, pair)
    return response


@ensure_csrf_cookie
@require_http_methods(["GET", "POST"])
@require_http_methods(["GET"])
def session_resume_view(request: HttpRequest) -> HttpResponse:
    """Where the gateway sends a browser whose access token ran out, before the login form.

    The refresh_token cookie (SameSite=Strict, path /api/auth) renews the pair and the browser
    goes on to `next`; without a usable one it goes to the login form. Strict means another
    site cannot make the browser renew, so this GET is safe to change state.
    """
    target = safe_next(request.GET.get("next"))
    tenant_id = tenant_id_from_request(request)
    raw_token = request.COOKIES.get(REFRESH_COOKIE)
    if tenant_id is not None and raw_token:
        try:
            pair = services.refresh_token_rotate(raw_token=raw_token, tenant_id=tenant_id)
        except ServiceError:
            pass
        else:
            response = HttpResponseRedirect(target)
            set_auth_cookies(response, pair)
            return response
    response = HttpResponseRedirect(f"/login?{urlencode({'next': target})}")
    if raw_token:
        clear_auth_cookies(response)
    return response


def logout_view(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "identity/logout.html")
    # The cookie itself stops working now (revoked-jti), not when it expires, and so does its session.
    services.logout(access=access_token_presented(request.COOKIES.get(ACCESS_COOKIE, "")))
    response = HttpResponseRedirect("/login")
    clear_auth_cookies(response)
    return response


@ensure_csrf_cookie
@require_http_methods(["GET", "POST"])
def invitation_view(request: HttpRequest, token: str) -> HttpResponse:
    invitation = selectors.invitation_get_pending(raw_token=token)
    if invitation is None:
        return render(request, "identity/invitation.html", {"invitation": None}, status=404)
    account = selectors.user_get_by_email(email=invitation.email)
    context = {
        "invitation": invitation,
        "is_new_user": account is None,
        "needs_verification": account is not None and not account.email_verified,
    }
    if request.method == "GET":
        return render(request, "identity/invitation.html", {**context, "form": InvitationAcceptForm()})
    form = InvitationAcceptForm(request.POST)
    if not form.is_valid():
        return render(request, "identity/invitation.html", {**context, "form": form}, status=400)
    try:
        services.invitation_accept(
            raw_token=token,
            password=form.cleaned_data["password"] or None,
            full_name=form.cleaned_data["full_name"],
            ip=client_ip(request),
        )
    except ServiceError as exc:
        for message in exc.details.get("fields", {}).get("password", []):
            form.add_error("password", message)
        if not form.errors or exc.code != "validation_error":
            form.add_error(None, exc.message)
        response = render(request, "identity/invitation.html", {**context, "form": form}, status=exc.status)
        return _with_headers(response, exc)
    return HttpResponseRedirect(f"/login?{urlencode({'email': invitation.email, 'joined': 1})}")


@ensure_csrf_cookie
@require_http_methods(["GET", "POST"])
def verification_view(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the verification mail: the mailbox's owner sets the account's password here."""
    user = verification_token_user(token=token)
    if user is None:
        return render(
            request, "identity/verify_email.html", {"user": None, "resend_form": VerificationResendForm()}, status=404
        )
    context = {"user": user}
    if request.method == "GET":
        form = EmailVerifyForm(initial={"full_name": user.full_name})
        return render(request, "identity/verify_email.html", {**context, "form": form})
    form = EmailVerifyForm(request.POST)
    if not form.is_valid():
        return render(request, "identity/verify_email.html", {**context, "form": form}, status=400)
    try:
        verified = services.email_verify(
            token=token, password=form.cleaned_data["password"], full_name=form.cleaned_data["full_name"]
        )
    except ServiceError as exc:
        for message in exc.details.get("fields", {}).get("password", []):
            form.add_error("password", message)
        if not form.errors:
            form.add_error(None, exc.message)
        return render(request, "identity/verify_email.html", {**context, "form": form}, status=exc.status)
    sign_in = [
        (organization, f"{settings.TENANT_URL_TEMPLATE.format(slug=organization.slug).rstrip('/')}/login")
        for organization in selectors.organizations_of(user=verified)
    ]
    response = render(request, "identity/verify_email.html", {"verified": verified, "sign_in": sign_in})
    clear_auth_cookies(response)  # whatever session this browser had on this host ended with the others
    return response


@ensure_csrf_cookie
@require_http_methods(["GET", "POST"])
def verification_resend_view(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "identity/verify_email.html", {"user": None, "resend_form": VerificationResendForm()})
    form = VerificationResendForm(request.POST)
    if not form.is_valid():
        return render(request, "identity/verify_email.html", {"user": None, "resend_form": form}, status=400)
    services.email_verification_resend(email=form.cleaned_data["email"])
    return render(request, "identity/verify_email.html", {"user": None, "resent": True})
