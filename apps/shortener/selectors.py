"""Reads: links by code, the lists people see, and the addresses links answer with."""

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.common.exceptions import NotFound
from apps.shortener import projects_client
from apps.shortener.access import Caller, link_rights
from apps.shortener.codes import code_is_wellformed
from apps.shortener.models import Link, LinkStatus


def link_by_code(code: str) -> Link | None:
    if not code_is_wellformed(code):
        return None
    return Link.objects.filter(code=code).first()


def link_visible(caller: Caller, code: str) -> Link:
    """A link of the caller's organization that the caller may see (else 404, as if absent)."""
    link = Link.objects.filter(code=code, tenant_id=caller.tenant_id).first() if code_is_wellformed(code) else None
    if link is None or not link_rights(caller, link).can_see:
        raise NotFound("No such link", code="link_not_found")
    return link


@dataclass(frozen=True)
class LinkFilters:
    task: int | None = None
    status: str | None = None
    q: str | None = None
    mine: bool = False


def links_visible(caller: Caller, filters: LinkFilters) -> QuerySet[Link]:
    """The organization's links the caller may see, newest first: a task's links to whoever can
    read the task; otherwise the caller's own, or all of them for owners and admins."""
    links = Link.objects.filter(tenant_id=caller.tenant_id)
    if filters.task is not None:
        access = projects_client.task_access(tenant_id=caller.tenant_id, task_id=filters.task, user_id=caller.user_id)
        if not access.can_read:
            raise NotFound("No such task", code="task_not_found")
        links = links.filter(task_id=filters.task)
    elif filters.mine or not caller.is_org_admin:
        links = links.filter(created_by=caller.user_id)
    if filters.status:
        links = _with_status(links, filters.status)
    if filters.q:
        links = links.filter(
            Q(code__icontains=filters.q) | Q(target__icontains=filters.q) | Q(task_key__iexact=filters.q)
        )
    return links.order_by("-id")


def _with_status(links: QuerySet[Link], status: str) -> QuerySet[Link]:
    now = timezone.now()
    if status == LinkStatus.REVOKED:
        return links.filter(revoked_at__isnull=False)
    if status == LinkStatus.EXPIRED:
        return links.filter(revoked_at__isnull=True).filter(Q(ended_reason=LinkStatus.EXPIRED) | Q(expires_at__lte=now))
    if status == LinkStatus.USED_UP:
        return links.filter(ended_reason=LinkStatus.USED_UP)
    return links.filter(ended_at__isnull=True, revoked_at__isnull=True).exclude(expires_at__lte=now)


def short_url(link: Link) -> str:
    return f"{settings.APEX_URL.rstrip('/')}/s/{link.code}"


def _host_parts(request: HttpRequest) -> tuple[str, str, str]:
    scheme = request.headers.get("X-Forwarded-Proto") or request.scheme
    host = request.headers.get("X-Forwarded-Host") or request.get_host()
    name, _, port = host.partition(":")
    return scheme, name.lower(), port


def tenant_origin(link: Link, request: HttpRequest | None = None) -> str:
    """The link's organization's address, on the scheme and port the visitor used."""
    scheme, port = "https", ""
    if request is not None:
        scheme, _, port = _host_parts(request)
    else:
        public = settings.APEX_URL
        scheme, _, rest = public.partition("://")
        port = rest.split("/")[0].partition(":")[2]
    host = f"{link.tenant_slug}.{settings.BASE_DOMAIN}"
    return f"{scheme}://{host}{':' + port if port else ''}"


def shared_view_url(link: Link, request: HttpRequest | None = None) -> str:
    return f"{tenant_origin(link, request)}/shared/{link.code}"
