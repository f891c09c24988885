"""Server-rendered pages: the project list, a project's settings and the live board.
Cookie-authenticated (`access_token`); a visitor without a valid token goes to /login. The
pages' writes go through the JSON API (static/js/projects.js, board.js). And the one page
without a login: a shared task's read-only view (`/shared/<code>`, its pass from the shortener)."""

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET
from django_tenants.utils import get_public_schema_name

from apps.common.auth import InvalidToken, WrongTenant, tenant_id_from_request, token_from_request, verify_access_token
from apps.common.exceptions import InvalidInput, NotFound
from apps.projects import cards, live, search, selectors, share
from apps.projects.db import tenant_connection
from apps.projects.models import LABEL_PALETTE, ColumnCategory, Priority, ProjectRole
from apps.projects.permissions import may_create_project
from apps.projects.schemas import TaskOut
from apps.projects.services.boards import BOARD_TEMPLATES
from apps.projects.services.labels import colours_next
from apps.projects.tenants.context import current_tenant

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
        tenant = current_tenant()
        request.topbar_org = tenant.name if tenant is not None else ""
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.message) from None
        except InvalidInput as exc:  # a page's 400 (the API answers these itself)
            raise BadRequest(exc.message) from None

    return wrapper


def _templates() -> list[dict]:
    names = {"kanban": "Kanban", "flow": "Longer flow"}
    return [
        {"value": value, "name": names.get(value, value), "columns": [name for name, _, _ in columns]}
        for value, columns in BOARD_TEMPLATES.items()
    ]


@require_GET
@page_auth
def home(request: HttpRequest) -> HttpResponse:
    """An organization's address: its projects."""
    return HttpResponseRedirect("/projects/")


@require_GET
@ensure_csrf_cookie
@page_auth
def project_index(request: HttpRequest) -> HttpResponse:
    projects = selectors.project_list(caller=request.claims)
    # An accepted invitation lands here with the project it named (`?project=<id>`): go on to its
    # board once the projects service has added the invitee (its event takes a moment).
    landing = _landing_project(request)
    if landing is not None:
        joined = next((project for project in projects if project["id"] == landing), None)
        if joined is not None and joined["boards"]:
            return HttpResponseRedirect(f"/boards/{joined['boards'][0]['id']}/")
    attempt = _landing_attempt(request)
    context = {
        "projects": projects,
        "joining": landing is not None and attempt < LANDING_ATTEMPTS,
        "joining_retry": f"/projects/?project={landing}&attempt={attempt + 1}",
        "archived_projects": selectors.project_list(caller=request.claims, archived=True),
        "may_create_project": may_create_project(request.claims),
        "templates": _templates(),
        "claims": request.claims,
    }
    return render(request, "projects/index.html", context)


LANDING_ATTEMPTS = 10


def _landing_project(request: HttpRequest) -> int | None:
    raw = request.GET.get("project", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


def _landing_attempt(request: HttpRequest) -> int:
    raw = request.GET.get("attempt", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 3 else 0


@require_GET
@ensure_csrf_cookie
@page_auth
def project_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    """Managers edit (the project, boards, members, labels, columns); everyone else reads."""
    project = selectors.project_settings(caller=request.claims, project_id=project_id)
    actions = set(project["actions"])
    context = {
        "project": project,
        "actions": actions,
        "may_edit": "edit_columns" in actions,
        "may_manage_members": "manage_members" in actions,
        "templates": _templates(),
        "palette": [{"hex": hex_, "name": name} for hex_, name in LABEL_PALETTE.items()],
        "next_colour": colours_next([label["colour"] for label in project["labels"]])[0],
        "categories": [(ColumnCategory.TODO, "To do"), (ColumnCategory.DOING, "Doing"), (ColumnCategory.DONE, "Done")],
        "roles": ProjectRole.choices,
        "managers": sum(1 for member in project["members"] if member["role"] == ProjectRole.MANAGER),
        "claims": request.claims,
    }
    return render(request, "projects/settings.html", context)


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
    label_colours = {label["name"]: label["colour"] for label in board["labels"]}
    for column in board["columns"]:
        column["cards_html"] = cards.cards_html(column["tasks"], people, label_colours)
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


def _changed_by(task: dict, people: dict) -> dict[str, str]:
    """Who last changed each field, by name: what a conflict in the panel names."""
    found: dict[str, str] = {}
    for entry in task["activity"]:
        if entry["verb"] == "updated":
            for field in entry["data"].get("fields") or []:
                person = people.get(entry["actor_id"])
                found[field] = person["name"] if person else "Someone"
    return found


# The newest entries of a card's history the panel shows; the older ones fold away.
HISTORY_SHOWN = 15


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
    """The card panel (the board's JavaScript opens it, and fetches it again when the card changes)."""
    task = TaskOut.from_orm(selectors.task_get(caller=request.claims, task_id=task_id)).model_dump(mode="json")
    if task["board"] != board_id:
        raise Http404("No such task on this board")
    actions = set(task["actions"])
    people = {person["id"]: person for person in task["people"]}
    history = list(reversed(task["activity"]))  # newest first
    user_id = request.claims.user_id
    may_edit = "edit_task" in actions
    assignable = selectors.project_people(project_id=task["project"]) if may_edit else []
    context = {
        "task": task,
        "actions": actions,
        "people": people,
        "me": user_id,
        "may_edit": may_edit,
        "may_assign": "assign_task" in actions,
        "may_moderate": "manage_members" in actions,
        "may_delete": "delete_task" in actions or (task["reporter"] == user_id and may_edit),
        "assignable": assignable,
        "label_names": selectors.project_label_names(project_id=task["project"]) if may_edit else [],
        "changed_by": _changed_by(task, people),
        "priorities": Priority.values,
        "history": history[:HISTORY_SHOWN],
        "older_history": history[HISTORY_SHOWN:],
    }
    return render(request, "projects/_panel.html", context)


@require_GET
@page_auth
def search_page(request: HttpRequest) -> HttpResponse:
    """The organization's tasks matching ?q= (what the quick-open's "All results" opens)."""
    text = request.GET.get("q", "")
    items: list[dict] = []
    error = None
    if text.strip():
        try:
            items = selectors.task_search(caller=request.claims, text=text, limit=search.MAX_LIMIT)
        except InvalidInput as exc:  # shown next to the field, with what was typed
            error = exc.message
    return render(
        request,
        "projects/search.html",
        {"q": text, "searched": bool(text.strip()) and error is None, "items": items, "error": error},
    )


@require_GET
@page_auth
def archived_cards(request: HttpRequest, board_id: int) -> HttpResponse:
    """The board's archived cards (shown in the panel), each to open or restore."""
    board = selectors.board_summary(caller=request.claims, board_id=board_id)
    tasks = selectors.task_list(
        caller=request.claims, filters=selectors.TaskFilters(), board_id=board_id, archived=True, limit=200
    )
    context = {"board": board, "tasks": tasks["items"], "may_edit": "edit_task" in board["actions"]}
    return render(request, "projects/_archived.html", context)


# The shared view of a task (issue 11): `/shared/<code>`, for anyone the shortener let through. No
# login: its pass is a grant the shortener signed, turned here into a cookie of this page's own
# (apps/projects/share.py). It shows what selectors.shared_task reads and nothing else.

SHARED_REFUSALS: dict[str, tuple[int, str, str]] = {
    # reason -> (status, heading, sentence)
    "missing": (
        403,
        "Open the link you were given",
        "This page opens from a share link. Open that link again (it may ask for its password).",
    ),
    "expired": (
        403,
        "Your access timed out",
        "Access to a shared task lasts a while after you open its link. Open the link again to see it.",
    ),
    "invalid": (403, "This link could not be opened", "The address is incomplete or was changed. Open the link again."),
    "spent": (
        403,
        "This pass was already used",
        "Each visit of a share link opens one browser. Open the link again in this browser.",
    ),
    "ended": (
        410,
        "This link has ended",
        "Whoever shared this task ended the link, or it expired or ran out of visits.",
    ),
    "gone": (404, "This task is gone", "The shared task no longer exists."),
}


def _shared_headers(response: HttpResponse) -> HttpResponse:
    response["Referrer-Policy"] = "no-referrer"  # the grant, the code: never in another site's logs
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Cache-Control"] = "no-store"
    response.platform_page = True  # its own HTML, whatever the status (apps/common/middleware.py)
    return response


def _shared_refused(request: HttpRequest, code: str, reason: str) -> HttpResponse:
    status, heading, sentence = SHARED_REFUSALS[reason]
    context = {"code": code, "reason": reason, "heading": heading, "sentence": sentence, "status": status}
    response = render(request, "projects/shared_refused.html", context, status=status)
    if reason in ("ended", "expired", "invalid"):  # the cookie opens nothing any more
        for name, path in share.cookie_paths(code):
            response.delete_cookie(name, path=path, samesite="Lax")
    return _shared_headers(response)


def _shared_tenant_id(request: HttpRequest) -> str | None:
    tenant = getattr(request, "tenant", None)
    return str(tenant.tenant_id) if tenant is not None else None


def _shared_redirect_with_cookie(request: HttpRequest, code: str, granted: share.SharePass) -> HttpResponse:
    response = _shared_headers(HttpResponseRedirect(share.page_path(code)))
    token = share.view_token(granted)
    for name, path in share.cookie_paths(code):
        response.set_cookie(
            name,
            token,
            max_age=share.VIEW_MAX_AGE,
            path=path,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
    return response


@require_GET
def shared_page(request: HttpRequest, code: str) -> HttpResponse:
    """`?grant=`: checked, spent, swapped for the cookie, and off to the clean address. Without it:
    the read-only task, live (static/js/shared.js, consumers.SharedTaskConsumer)."""
    tenant_id = _shared_tenant_id(request)
    if tenant_id is None:  # the apex: no organization, no task
        raise Http404("Shared tasks are served on their organization's host")
    cookie = request.COOKIES.get(share.COOKIE)
    grant = request.GET.get("grant")
    if grant is not None:
        try:
            granted = share.grant_check(grant, code=code, tenant_id=tenant_id)
            if share.ends_views(selectors.shared_link_ended(code=code)):
                return _shared_refused(request, code, "ended")
            if not share.grant_spend(grant, redis_client=live.redis_client()):
                raise share.PassRefused("spent")
        except share.PassRefused as refused:
            try:  # this browser's own second look (a reload, the back button): its cookie still opens
                share.view_check(cookie, code=code, tenant_id=tenant_id)
            except share.PassRefused:
                return _shared_refused(request, code, refused.reason)
            return _shared_headers(HttpResponseRedirect(share.page_path(code)))
        return _shared_redirect_with_cookie(request, code, granted)
    try:
        granted = share.view_check(cookie, code=code, tenant_id=tenant_id)
    except share.PassRefused as refused:
        return _shared_refused(request, code, refused.reason)
    if share.ends_views(selectors.shared_link_ended(code=code)):
        return _shared_refused(request, code, "ended")
    task = selectors.shared_task(task_id=granted.task_id)
    if task is None:
        return _shared_refused(request, code, "gone")
    html = render_to_string("projects/_shared_task.html", {"task": task})
    context = {"task": task, "task_html": html, "digest": share.digest(html), "code": code}
    return _shared_headers(render(request, "projects/shared.html", context))
