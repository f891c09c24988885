"""Server-rendered pages: the project list and the live board. Cookie-authenticated
(`access_token`); a visitor without a valid token goes to /login."""

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.core.exceptions import BadRequest
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET
from django_tenants.utils import get_public_schema_name

from apps.common.auth import InvalidToken, WrongTenant, tenant_id_from_request, token_from_request, verify_access_token
from apps.common.exceptions import InvalidInput, NotFound
from apps.projects import cards, live, selectors
from apps.projects.db import tenant_connection
from apps.projects.models import ColumnCategory, Priority
from apps.projects.schemas import TaskOut

View = Callable[..., HttpResponse]


def _login_redirect(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect("/login?" + urlencode({"next": request.get_full_path()}))


def page_auth(view: View) -> View:
    """Verify the cookie token for this tenant, put the claims on request.claims."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if tenant_connection().schema_name == get_public_schema_name():
            raise Http404("Boards are served on a tenant's host only")
        token, _ = token_from_request(request)
        if token is None:
            return _login_redirect(request)
        try:
            request.claims = verify_access_token(token, tenant_id=tenant_id_from_request(request))
        except WrongTenant:
            raise Http404("No such page") from None
        except InvalidToken:
            return _login_redirect(request)
        request.topbar_person = selectors.people_get(user_ids=[request.claims.user_id])[request.claims.user_id]
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.message) from None
        except InvalidInput as exc:  # a page's 400 (the API answers these itself)
            raise BadRequest(exc.message) from None

    return wrapper


@require_GET
@page_auth
def project_index(request: HttpRequest) -> HttpResponse:
    projects = selectors.project_list(caller=request.claims)
    return render(request, "projects/index.html", {"projects": projects, "claims": request.claims})


def _filters(request: HttpRequest) -> selectors.TaskFilters:
    from datetime import date

    def day(name: str) -> date | None:
        try:
            return date.fromisoformat(request.GET.get(name, ""))
        except ValueError:
            return None

    return selectors.TaskFilters(
        assignee=request.GET.get("assignee") or None,
        label=request.GET.get("label") or None,
        text=(request.GET.get("q") or "").strip()[:200] or None,
        due_before=day("due_before"),
        due_after=day("due_after"),
    )


@require_GET
@ensure_csrf_cookie
@page_auth
def board_page(request: HttpRequest, board_id: int) -> HttpResponse:
    filters = _filters(request)
    # Read before the board, so the live socket replays anything that lands in between.
    seq = live.board_seq(schema=tenant_connection().schema_name, board_id=board_id)
    board = selectors.board_get(caller=request.claims, board_id=board_id, filters=filters)
    labels = sorted({label for column in board["columns"] for task in column["tasks"] for label in task["labels"]})
    people = {person["id"]: person for person in board["people"]}
    for column in board["columns"]:
        column["cards_html"] = cards.cards_html(column["tasks"], people)
    context = {
        "board": board,
        "seq": seq,
        "filters": filters,
        "labels": labels,
        "claims": request.claims,
        "may_move": "move_task" in board["actions"],
        "may_create": "create_task" in board["actions"],
        "categories": ColumnCategory,
        "priorities": Priority.values,
    }
    template = "projects/_columns.html" if request.headers.get("HX-Request") else "projects/board.html"
    return render(request, template, context)


@require_GET
@page_auth
def board_cards(request: HttpRequest, board_id: int) -> HttpResponse:
    """`{"cards": [card, ...]}`: those of the cards `?ids=1,2` that the board's filters (the page's
    own query: q, assignee, label, due_before) show, as the board's live messages carry them."""
    parts = [part.strip() for part in request.GET.get("ids", "").split(",") if part.strip()]
    if not all(part.isascii() and part.isdigit() and len(part) <= 18 for part in parts):
        raise InvalidInput("ids must be task ids separated by commas")
    ids = [int(part) for part in parts]
    found = selectors.board_cards(caller=request.claims, board_id=board_id, task_ids=ids, filters=_filters(request))
    return JsonResponse({"cards": found})


@require_GET
@page_auth
def card_panel(request: HttpRequest, board_id: int, task_id: int) -> HttpResponse:
    task = TaskOut.from_orm(selectors.task_get(caller=request.claims, task_id=task_id)).model_dump(mode="json")
    if task["board"] != board_id:
        raise Http404("No such task on this board")
    return render(request, "projects/_panel.html", {"task": task, "actions": set(task["actions"])})
