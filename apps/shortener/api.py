"""The shortener's HTTP API (docs/api.md, "Short links"), on Django Ninja. Thin: parse, call a
selector or service with the caller, shape the answer."""

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Status
from ninja.errors import HttpError

from apps.common.auth import NinjaJWTAuth, TokenPrincipal, tenant_id_from_request
from apps.shortener import qr, selectors, services
from apps.shortener.models import Link
from apps.shortener.schemas import LinkIn, LinkListQuery, LinkOut, LinkPage, LinkPatch


class TenantJWTAuth(NinjaJWTAuth):
    """The platform's token check, on an organization's host only."""

    def __call__(self, request: HttpRequest) -> TokenPrincipal | None:
        if tenant_id_from_request(request) is None:
            raise HttpError(404, "Short links are managed on an organization's host")
        return super().__call__(request)


router = Router(auth=TenantJWTAuth(), tags=["links"])


def _caller(request: HttpRequest) -> services.Caller:
    claims = request.auth.claims
    return services.Caller(
        user_id=claims.user_id,
        tenant_id=claims.tenant_id,
        tenant_slug=request.headers.get("X-Tenant-Slug", ""),
        roles=claims.roles,
        permissions=claims.permissions,
    )


def link_out(link: Link) -> dict:
    short_url = selectors.short_url(link)
    return {
        "code": link.code,
        "short_url": short_url,
        "target": selectors.shared_view_url(link) if link.is_task_link else link.target,
        "task": {"id": link.task_id, "key": link.task_key, "title": link.task_title} if link.is_task_link else None,
        "expires_at": link.expires_at,
        "max_visits": link.max_visits,
        "visits": link.visits,
        "has_password": link.has_password,
        "status": services.link_status(link),
        "created_at": link.created_at,
        "created_by": link.created_by,
        "revoked_at": link.revoked_at,
        "qr_png": f"/api/links/{link.code}/qr.png",
        "qr_svg": f"/api/links/{link.code}/qr.svg",
    }


@router.post("/links", response={201: LinkOut})
def link_create(request: HttpRequest, payload: LinkIn) -> Status:
    link = services.link_create(
        _caller(request),
        target=payload.target,
        task_id=payload.task,
        expires_at=payload.expires_at,
        max_visits=payload.max_visits,
        password=payload.password,
        alias=payload.alias,
    )
    link.refresh_from_db()
    return Status(201, link_out(link))


@router.get("/links", response=LinkPage)
def links_list(request: HttpRequest, query: Query[LinkListQuery]) -> dict:
    filters = selectors.LinkFilters(task=query.task, status=query.status, q=query.q, mine=query.mine)
    links = selectors.links_visible(_caller(request), filters)
    count = links.count()
    page = list(links[query.offset : query.offset + query.limit])
    following = None
    if query.offset + len(page) < count:
        params = {k: v for k, v in query.dict().items() if v not in (None, False)}
        params["offset"] = query.offset + len(page)
        following = f"/api/links?{urlencode(params)}"
    return {"items": [link_out(link) for link in page], "count": count, "next": following}


@router.get("/links/{code}", response=LinkOut)
def link_get(request: HttpRequest, code: str) -> dict:
    return link_out(selectors.link_visible(_caller(request), code))


@router.patch("/links/{code}", response=LinkOut)
def link_update(request: HttpRequest, code: str, payload: LinkPatch) -> dict:
    changes = {name: getattr(payload, name) for name in payload.model_fields_set}
    link = services.link_update(_caller(request), code, **changes)
    link.refresh_from_db()
    return link_out(link)


@router.delete("/links/{code}", response={204: None})
def link_revoke(request: HttpRequest, code: str) -> Status:
    services.link_revoke(_caller(request), code)
    return Status(204, None)


def _qr_response(content: bytes, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@router.get(
    "/links/{code}/qr.png", response={200: None}, openapi_extra={"responses": {200: {"content": {"image/png": {}}}}}
)
def link_qr_png(request: HttpRequest, code: str) -> HttpResponse:
    link = selectors.link_visible(_caller(request), code)
    return _qr_response(qr.qr_png(selectors.short_url(link)), "image/png")


@router.get(
    "/links/{code}/qr.svg", response={200: None}, openapi_extra={"responses": {200: {"content": {"image/svg+xml": {}}}}}
)
def link_qr_svg(request: HttpRequest, code: str) -> HttpResponse:
    link = selectors.link_visible(_caller(request), code)
    return _qr_response(qr.qr_svg(selectors.short_url(link)), "image/svg+xml")
