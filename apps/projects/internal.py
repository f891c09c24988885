"""Service-to-service endpoints of the projects service (the gateway never routes /internal/).

`GET /internal/tasks/<id>/share-check?user=<user_id>`: the shortener asks, before it makes or
changes a task link, whether that person may share the task (read it) and manage its links.
Authenticated by X-Internal-Token (settings.INTERNAL_API_TOKEN, compared in constant time); the
tenant is X-Tenant-ID's, as the tenant middleware resolved it.
"""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from apps.common.auth import tenant_id_from_request
from apps.common.errors import error_response
from apps.common.exceptions import NotFound
from apps.projects import selectors
from apps.projects.models import USER_ID_LENGTH

BIGINT_MAX = 2**63 - 1


def internal_token_valid(request: HttpRequest) -> bool:
    presented = request.headers.get("X-Internal-Token", "")
    return hmac.compare_digest(presented.encode(), settings.INTERNAL_API_TOKEN.encode())


@require_GET
def task_share_check(request: HttpRequest, task_id: int) -> HttpResponse:
    if not internal_token_valid(request):
        return error_response(request, 403, "invalid_internal_token", "A valid X-Internal-Token header is required")
    tenant = getattr(request, "tenant", None)
    tenant_id = tenant_id_from_request(request)
    # The header, not a Host: an internal caller names the tenant it means.
    if tenant is None or tenant_id is None or str(tenant.tenant_id) != tenant_id:
        return error_response(request, 400, "tenant_required", "X-Tenant-ID must name the task's tenant")
    user_id = request.GET.get("user", "").strip()
    if not user_id or len(user_id) > USER_ID_LENGTH:
        return error_response(request, 400, "invalid", "?user= must be a user id")
    if task_id > BIGINT_MAX:
        return error_response(request, 404, "not_found", "No such task")
    try:
        found = selectors.task_share_check(task_id=task_id, user_id=user_id)
    except NotFound:
        return error_response(request, 404, "not_found", "No such task")
    return JsonResponse(found)
