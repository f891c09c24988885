"""Browser pages: sign in, sign out, accept an invitation, verify an address, the organization's members.
Thin: forms in, services, cookies out."""

from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods

from apps.common import avatars
from apps.common.auth import InvalidToken, WrongTenant, tenant_id_from_request, token_from_request, verify_access_token
from apps.common.exceptions import ServiceError
from apps.common.http import client_ip
from apps.identity import selectors, services
from apps.identity.cookies import ACCESS_COOKIE, REFRESH_COOKIE, clear_auth_cookies, set_auth_cookies
from apps.identity.errors import InvalidCredentials, LoginThrottled
from apps.identity.forms import EmailVerifyForm, InvitationAcceptForm, LoginForm, VerificationResendForm
from apps.identity.models import Invitation, Membership
from apps.identity.roles import ADMIN_ROLES, ProjectRole, RoleName
from apps.identity.tokens import access_token_presented
from apps.identity.verification import verification_token_user

DEFAULT_NEXT = "/projects/"
MEMBERS_PATH = "/members/"


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
        membership = services.invitation_accept(
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
    landing = invitation_landing(invitation)
    # The person just proved the account's password (an existing one) or chose it (a new one):
    # that is a sign-in, so they go straight in, as /login would take them.
    try:
        pair = services.token_pair_issue(membership=membership)
    except ServiceError:  # the password changed in between: sign in again
        return HttpResponseRedirect(f"/login?{urlencode({'email': invitation.email, 'joined': 1, 'next': landing})}")
    response = HttpResponseRedirect(landing)
    set_auth_cookies(response, pair)
    return response


def invitation_landing(invitation: Invitation) -> str:
    """Where an accepted invitation takes the person: the project it named (the projects service adds
    them from UserPermissionChanged, and its /projects/ page opens `?project=<id>`), else the project list."""
    if invitation.project_id is None:
        return DEFAULT_NEXT
    return f"{DEFAULT_NEXT}?{urlencode({'project': invitation.project_id})}"


# The organization's members


View = Callable[..., HttpResponse]


def member_page(view: View) -> View:
    """A page for the organization's members: the access cookie, verified for this host's tenant, and a
    membership read fresh from the database (a removed member's token may live on for minutes)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        tenant_id = tenant_id_from_request(request)
        if tenant_id is None:
            raise Http404("Members are listed on an organization's address")
        token, _ = token_from_request(request)
        if token is None:
            return HttpResponseRedirect(f"/login?{urlencode({'next': request.get_full_path()})}")
        try:
            claims = verify_access_token(token, tenant_id=tenant_id)
        except WrongTenant:
            raise Http404("No such page") from None
        except InvalidToken:
            return HttpResponseRedirect(f"/api/auth/resume?{urlencode({'next': request.get_full_path()})}")
        membership = selectors.membership_get(user_id=claims.user_id, tenant_id=tenant_id)
        if membership is None:
            raise PermissionDenied("You are no longer a member of this organization")
        request.claims = claims  # type: ignore[attr-defined]  # the top bar (apps.common.context_processors)
        request.topbar_person = _person(membership.user)  # type: ignore[attr-defined]
        request.topbar_org = membership.organization.name  # type: ignore[attr-defined]
        return view(request, membership, *args, **kwargs)

    return wrapper


def _person(user: object) -> dict:
    name = str(getattr(user, "full_name", "") or "")
    email = str(getattr(user, "email", "") or "")
    return {
        "name": name or email,
        "initials": avatars.initials_for(name=name, email=email),
        "palette": avatars.palette_for(str(getattr(user, "pk", ""))),
    }


@require_GET
@ensure_csrf_cookie
@member_page
def members_view(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Everyone sees who is in the organization; whoever may manage members also invites, resends,
    revokes, changes roles and removes (static/js/members.js, through /api/users: the same services)."""
    organization = membership.organization
    may_manage = selectors.access_of_membership(membership).allows("manage_members")
    invitations = list(selectors.invitation_list_open(organization=organization)) if may_manage else []
    now = timezone.now()
    members = [
        {"membership": member, **_person(member.user)}
        for member in selectors.membership_list(organization=organization)
    ]
    context = {
        "me": membership,
        "organization": organization,
        "members": members,
        "invitation_days": settings.INVITATION_LIFETIME.days,
        "may_manage": may_manage,
        "is_admin": membership.role.name in ADMIN_ROLES,
        "invitations": invitations,
        "now": now,
        "recently": now - timedelta(minutes=1),
        "roles": RoleName.choices,
        "project_roles": ProjectRole.choices,
    }
    return render(request, "identity/members.html", context)


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
