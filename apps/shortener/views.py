"""`/s/<code>`: the redirect the gateway could not answer from its cache, the password gate, and
the pages a browser gets when a link cannot be followed. API clients get the JSON error contract.
"""

from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.common.errors import error_body, wants_html
from apps.common.exceptions import RateLimited, Unavailable
from apps.shortener import grants, selectors, services, throttle
from apps.shortener.models import Link, LinkStatus

ENDED = {
    LinkStatus.EXPIRED: ("This link has expired", "Whoever shared it can send you a new one."),
    LinkStatus.USED_UP: ("This link has been used up", "It could be opened a limited number of times, and it was."),
    LinkStatus.REVOKED: ("This link was revoked", "Whoever shared it turned it off."),
}
_NO_STORE = "private, no-store"


def _refusal(request: HttpRequest, status: int, code: str, title: str, sentence: str, **extra: object) -> HttpResponse:
    if wants_html(request):
        response = render(
            request, "shortener/refused.html", {"status": status, "title": title, "sentence": sentence}, status=status
        )
        response.platform_page = True  # type: ignore[attr-defined]  # a page for a browser, kept as is
    else:
        body = error_body(code, f"{title}. {sentence}", request_id=getattr(request, "request_id", None), **extra)
        response = JsonResponse(body, status=status)
    response["Cache-Control"] = _NO_STORE
    response["X-Robots-Tag"] = "noindex"
    return response


def _gate(
    request: HttpRequest, link: Link, *, status: int, code: str, message: str, retry_after: int | None = None
) -> HttpResponse:
    if wants_html(request):
        context = {
            "code": link.code,
            "error": message if code != "password_required" else "",
            "retry_after": retry_after,
        }
        response = render(request, "shortener/gate.html", context, status=status)
        response.platform_page = True  # type: ignore[attr-defined]
        # Browsers check form-action against every redirect of a form's submission, and a right
        # password redirects to the target (or the task's shared view) on another host.
        response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY.replace(
            "form-action 'self'", "form-action 'self' https: http:"
        )
        response["Cache-Control"] = _NO_STORE
        response["X-Robots-Tag"] = "noindex"
    else:
        response = _refusal(
            request, status, code, message, "Send the password with POST /s/<code> (form or JSON field `password`)"
        )
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def _visitor(request: HttpRequest) -> services.Visitor:
    # Set by the gateway for every /s/ request, after dropping any a client sent (gateway/visitors.py).
    return services.Visitor(
        visitor=request.headers.get("X-Visitor-Id", "")[:64] or "unknown",
        country=(request.headers.get("X-Visitor-Country", "")[:2].upper() or None),
        bot=request.headers.get("X-Visitor-Bot") == "1",
        referrer=request.headers.get("Referer"),
        user_agent=request.headers.get("User-Agent"),
    )


def _client_ip(request: HttpRequest) -> str:
    return request.headers.get("X-Forwarded-For", "").split(",")[0].strip() or request.META.get("REMOTE_ADDR", "")


def _posted_password(request: HttpRequest) -> str:
    data = getattr(request, "platform_json", None)
    if isinstance(data, dict):
        value = data.get("password")
        return value if isinstance(value, str) else ""
    return request.POST.get("password", "")


def _location(request: HttpRequest, link: Link) -> str:
    if not link.is_task_link:
        return link.target
    return f"{selectors.shared_view_url(link, request)}?grant={quote(grants.share_grant(link))}"


@csrf_exempt  # anyone holding the link may post its password; there is no session to ride
@require_http_methods(["GET", "HEAD", "POST"])
def link_follow(request: HttpRequest, code: str) -> HttpResponse:
    link = selectors.link_by_code(code)
    if link is None:
        return _refusal(request, 404, "link_not_found", "This link does not exist", "Check that it was copied whole.")
    status = services.link_status(link)
    if status != LinkStatus.ACTIVE:
        title, sentence = ENDED[status]
        return _refusal(request, 410, f"link_{status}", title, sentence, link_status=status)

    unlock_token = None
    unlocked = grants.unlock_valid(link, request.COOKIES.get(grants.unlock_cookie_name(link.code)))
    if request.method == "POST" and link.has_password and not unlocked:
        try:
            right = services.password_unlock(
                link, _posted_password(request), client=throttle.client_key(_client_ip(request))
            )
        except RateLimited as refused:
            return _gate(
                request, link, status=429, code="rate_limited", message=refused.message, retry_after=refused.retry_after
            )
        except Unavailable as refused:
            return _gate(
                request, link, status=503, code="unavailable", message=refused.message, retry_after=refused.retry_after
            )
        if not right:
            return _gate(request, link, status=401, code="wrong_password", message="That password is not right")
        unlocked, unlock_token = True, grants.unlock_token(link)

    if request.method == "HEAD":
        # A link checker's or previewer's probe: not a visit. Only an open link says where it goes.
        response = HttpResponse(status=200 if link.has_password or link.max_visits or link.is_task_link else 302)
        if response.status_code == 302:
            response["Location"] = link.target
        response["Cache-Control"] = _NO_STORE
        return response

    outcome = services.visit(link, _visitor(request), unlocked=unlocked)
    if outcome.kind == "password_required":
        return _gate(
            request, link, status=401, code="password_required", message="This link is protected by a password"
        )
    if outcome.kind == "gone":
        title, sentence = (
            ENDED[services.link_status(outcome.link)] if outcome.link.ended_reason else ENDED[LinkStatus.USED_UP]
        )
        return _refusal(request, 410, "link_gone", title, sentence)
    if outcome.kind == "preview":
        response = render(request, "shortener/preview.html", {}, status=200)
    else:
        response = HttpResponse(status=302)
        response["Location"] = _location(request, link)
    response["Cache-Control"] = _NO_STORE
    response["X-Robots-Tag"] = "noindex"
    if unlock_token:
        response.set_cookie(
            grants.unlock_cookie_name(link.code),
            unlock_token,
            max_age=grants.UNLOCK_SECONDS,
            path=f"/s/{link.code}",
            secure=request.headers.get("X-Forwarded-Proto") == "https",
            httponly=True,
            samesite="Lax",
        )
    return response
