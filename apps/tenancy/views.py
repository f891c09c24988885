"""The apex's pages: the landing page with the signup form, and a new organization's status page.

Thin: the form bounds what was typed, `services.tenant_signup` decides (the same function the
API calls, so the page is no oracle the API is not: docs/security.md), and every refusal is
shown next to the field it concerns. The form works without JavaScript; static/js/signup.js
posts the same form with `Accept: application/json` and gets the same verdicts as JSON.
"""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from apps.common.errors import error_body
from apps.common.exceptions import ServiceError
from apps.tenancy import selectors, services
from apps.tenancy.forms import SignupForm
from apps.tenancy.models import Tenant
from apps.tenancy.slugs import MAX_LENGTH, MIN_LENGTH

# Where a refusal's `fields` (tenancy's or identity's names) are shown on the form.
FORM_FIELD = {
    "name": "name",
    "slug": "slug",
    "tenant_slug": "slug",
    "owner_email": "owner_email",
    "email": "owner_email",
    "owner_password": "owner_password",
    "password": "owner_password",
    "owner_full_name": "owner_name",
    "full_name": "owner_name",
    "owner_name": "owner_name",
}
UNAVAILABLE = "Your organization could not be created just now, and nothing was kept. Try again in a minute."
SESSION_KEY = "signups"
SESSION_KEEP = 5  # organizations this browser signed up whose owner address it remembers


def _port_suffix(request: HttpRequest) -> str:
    """`:<port>` of the address this request came in on ("" for the scheme's default port)."""
    host = request.get_host()  # validated against ALLOWED_HOSTS; the gateway passes the client's Host
    port = host.rsplit(":", 1)[1] if ":" in host and not host.endswith("]") else ""
    default = "443" if request.is_secure() else "80"
    return f":{port}" if port.isdigit() and port != default else ""


def tenant_address(request: HttpRequest, *, slug: str) -> str:
    """The organization's own address, on the port this request came in on: http://acme.localhost:8000/."""
    scheme = "https" if request.is_secure() else "http"
    return f"{scheme}://{selectors.tenant_domain_name(slug=slug)}{_port_suffix(request)}/"


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("Accept", "").split(",")[0].strip().lower() == "application/json"


def _form_context(request: HttpRequest, form: SignupForm) -> dict:
    return {
        "form": form,
        "domain_suffix": f".{settings.BASE_DOMAIN}{_port_suffix(request)}",
        "slug_min": MIN_LENGTH,
        "slug_max": MAX_LENGTH,
    }


def _refusal_on_form(form: SignupForm, exc: ServiceError) -> None:
    """The service's (or identity's) verdict, next to the field it names, else above the form."""
    fields = exc.details.get("fields")
    placed = False
    if isinstance(fields, dict):
        for name, messages in fields.items():
            field = FORM_FIELD.get(str(name))
            for message in messages if isinstance(messages, list) else [messages]:
                form.add_error(field, str(message))
                placed = True
    if not placed:
        form.add_error(None, exc.message)


def _signup_remember(request: HttpRequest, *, slug: str, email: str) -> None:
    """This browser's own signups, so their status page can say where the mail went (nobody else's)."""
    remembered = dict(request.session.get(SESSION_KEY) or {})
    remembered.pop(slug, None)
    remembered[slug] = email
    request.session[SESSION_KEY] = dict(list(remembered.items())[-SESSION_KEEP:])


@ensure_csrf_cookie
@require_http_methods(["GET", "HEAD"])
def landing_view(request: HttpRequest) -> HttpResponse:
    return render(request, "tenancy/landing.html", _form_context(request, SignupForm()))


@ensure_csrf_cookie
@require_http_methods(["GET", "HEAD", "POST"])
def signup_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseRedirect("/")
    form = SignupForm(request.POST)
    status, headers = 400, {}
    code, message = "validation_error", "Some fields need another look"
    if form.is_valid():
        data = form.cleaned_data
        try:
            tenant = services.tenant_signup(
                name=data["name"],
                slug=data["slug"],
                owner_email=data["owner_email"],
                owner_password=data["owner_password"],
                owner_full_name=data["owner_name"],
                trace_id=getattr(request, "request_id", None),
            )
        except ServiceError as exc:
            if exc.status >= 500:  # identity unreachable, no placement: nothing the person typed is wrong
                form.add_error(None, UNAVAILABLE)
            elif exc.code == "slug_taken":  # the address as the person will type it, port included
                address = tenant_address(request, slug=data["slug"]).split("://", 1)[1].rstrip("/")
                form.add_error("slug", f"{address} is taken; choose another subdomain")
            else:
                _refusal_on_form(form, exc)
            status, headers, code, message = exc.status, dict(exc.headers), exc.code, exc.message
        else:
            _signup_remember(request, slug=tenant.slug, email=data["owner_email"])
            next_url = f"/signup/{tenant.slug}"
            if _wants_json(request):
                return JsonResponse({"next": next_url, **selectors.tenant_public_status(tenant=tenant)}, status=201)
            return HttpResponseRedirect(next_url, status=303)
    if _wants_json(request):
        fields = {name: [str(error) for error in errors] for name, errors in form.errors.items()}
        body = error_body(code, message, request_id=getattr(request, "request_id", None), fields=fields)
        response: HttpResponse = JsonResponse(body, status=status)
    else:
        response = render(request, "tenancy/landing.html", _form_context(request, form), status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@require_http_methods(["GET", "HEAD"])
def signup_status_view(request: HttpRequest, slug: str) -> HttpResponse:
    tenant: Tenant | None = selectors.tenant_get_by_slug(slug=slug)
    if tenant is None:
        raise Http404(f"No organization {slug!r}")
    address = tenant_address(request, slug=tenant.slug)
    context = {
        "tenant": selectors.tenant_public_status(tenant=tenant),
        "address": address,
        "address_label": address.split("://", 1)[1].rstrip("/"),
        "login_url": f"{address}login",
        "owner_email": (request.session.get(SESSION_KEY) or {}).get(tenant.slug),
    }
    return render(request, "tenancy/status.html", context)
