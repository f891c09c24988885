"""Organization-wide search (apps/projects/search.py): what it finds, in which order, for whom,
what it makes of odd input, and that its vectors follow every write that changes a task's text."""

import importlib

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from apps.projects import search, selectors
from apps.projects.models import Task, TaskSearch
from apps.projects.search import SearchQuery, highlighted, search_params, search_sql
from apps.projects.services import boards as board_services
from apps.projects.services import comments as comment_services
from apps.projects.services import projects as project_services
from apps.projects.services import tasks as task_services
from apps.projects.services.search import tasks_search_refresh
from tests.projects import test_api
from tests.projects.conftest import MANAGER_PERMISSIONS, MEMBER_PERMISSIONS, TenantInfo, make_caller
from tests.projects.test_api import ApiClient, assert_error

# The API tests' fixtures: a board made through the API, and its members' clients.
api_board, as_manager, as_member = test_api.api_board, test_api.as_manager, test_api.as_member


def keys(caller, text: str, **kwargs: object) -> list[str]:
    return [hit["key"] for hit in selectors.task_search(caller=caller, text=text, **kwargs)]


def add(caller, board, title: str, description: str = "") -> Task:
    return task_services.task_create(caller=caller, board_id=board.id, title=title, description=description)


# What is found ---------------------------------------------------------------------------------


def test_an_exact_key_ranks_first_in_any_case(board, member) -> None:
    tasks = [add(member, board, f"Task {number}") for number in range(1, 13)]
    mention = add(member, board, "Follow-up", "Blocked by DEMO-4 until the API lands")
    comment_services.comment_add(caller=member, task_id=tasks[0].id, body="Same root cause as DEMO-4")

    for text in ("DEMO-4", "demo-4", " Demo-4 "):
        found = keys(member, text)
        assert found[0] == "DEMO-4", (text, found)
        assert {mention.key, tasks[0].key} <= set(found), "tasks that mention the key are found after it"
    # A key being typed lists the keys it begins.
    assert set(keys(member, "DEMO-1")) >= {"DEMO-1", "DEMO-10", "DEMO-11", "DEMO-12"}
    assert keys(member, "DEMO-1")[0] == "DEMO-1"
    assert len(keys(member, "demo-", limit=50)) == 13


def test_a_word_in_very_many_tasks_is_ranked_among_its_newest_matches(board, member, monkeypatch) -> None:
    monkeypatch.setattr(search, "CANDIDATES", 3)
    oldest = add(member, board, "Widget", "about the widget")
    newer = [add(member, board, f"Note {number}", "a widget again") for number in range(4)]

    assert keys(member, "widget") == [task.key for task in reversed(newer[1:])]
    assert keys(member, oldest.key)[0] == oldest.key  # an exact key is always a candidate


def test_title_outranks_description_which_outranks_a_comment(board, member) -> None:
    in_comment = add(member, board, "Quarterly planning")
    comment_services.comment_add(caller=member, task_id=in_comment.id, body="The invoice template is wrong")
    in_description = add(member, board, "Billing follow-up", "Send the invoice to accounting")
    in_title = add(member, board, "Fix the invoice totals")

    assert keys(member, "invoice") == [in_title.key, in_description.key, in_comment.key]
    hits = {hit["key"]: hit for hit in selectors.task_search(caller=member, text="invoice")}
    assert hits[in_title.key]["matched"] == "title"
    assert hits[in_description.key]["matched"] == "description"
    assert hits[in_comment.key]["matched"] == "comment"
    assert hits[in_comment.key]["snippet_html"] == "The <mark>invoice</mark> template is wrong"


def test_words_are_found_stemmed_as_prefixes_and_together(board, member) -> None:
    deploy = add(member, board, "Release train", "We deployed the staging environment on Friday")
    add(member, board, "Unrelated", "Nothing to see here")

    assert keys(member, "deploying") == [deploy.key]  # stemmed: deploying ~ deployed
    for typed in ("dep", "deplo", "deploye", "stag", "environm", "environmen"):
        assert keys(member, typed) == [deploy.key], typed  # the word being typed is a prefix
    assert keys(member, "deplo ") == []  # a space ends the word: no prefix any more
    assert keys(member, "staging friday") == [deploy.key]
    assert keys(member, "staging production") == []
    assert keys(member, '"staging environment"') == [deploy.key]
    assert keys(member, "staging -friday") == []
    assert keys(member, "nothing or friday") != []


def test_snippets_mark_the_words_and_escape_everything_else(board, member) -> None:
    description = "Intro.\n\n<script>alert('x')</script> deploy & <b>ship</b>"
    add(member, board, "<img src=x onerror=alert(1)> card", description)

    (hit,) = selectors.task_search(caller=member, text="deploy")

    assert hit["snippet_html"] == (
        "Intro. &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; <mark>deploy</mark> &amp; &lt;b&gt;ship&lt;/b&gt;"
    )
    assert hit["snippet"] == "Intro. <script>alert('x')</script> deploy & <b>ship</b>"
    assert hit["title_html"] == "&lt;img src=x onerror=alert(1)&gt; card"
    (titled,) = selectors.task_search(caller=member, text="onerror")
    assert titled["title_html"] == "&lt;img src=x <mark>onerror</mark>=alert(1)&gt; card"


def test_snippets_read_markdown_as_text(board, member) -> None:
    add(member, board, "Notes", "## Rollout\n\n> **Deploy** with `make release`, then check __metrics__ * twice")

    (hit,) = selectors.task_search(caller=member, text="deploy")

    assert hit["snippet"] == "Rollout Deploy with make release, then check metrics * twice"
    assert hit["snippet_html"] == "Rollout <mark>Deploy</mark> with make release, then check metrics * twice"


def test_marks_in_the_text_itself_cannot_unbalance_the_html() -> None:
    start, stop = "\ue000", "\ue001"
    assert highlighted(f"a {stop}b{start} c {start}d").html == "a b<mark> c d</mark>"
    assert highlighted(f"{start}x{start}y{stop}{stop}<i>").html == "<mark>xy</mark>&lt;i&gt;"
    # What the database gets never holds them: they are removed from the text before ts_headline.


def test_the_text_of_a_task_carrying_our_marks_is_shown_as_text(board, member) -> None:
    add(member, board, "Odd \ue000title\ue001", "deploy \ue001<i>x</i>\ue000 now")

    (hit,) = selectors.task_search(caller=member, text="deploy")

    assert hit["snippet_html"] == "<mark>deploy</mark> &lt;i&gt;x&lt;/i&gt; now"
    assert "\ue000" not in hit["title_html"] and "<mark>" not in hit["title_html"]


# Kept up to date ---------------------------------------------------------------------------------


def test_edited_title_and_description_are_found_by_their_new_words_only(board, member) -> None:
    task = add(member, board, "Old headline", "original wording")

    task_services.task_update(caller=member, task_id=task.id, title="Fresh headline", description="rewritten text")

    assert keys(member, "original") == [] and keys(member, "old") == []
    assert keys(member, "rewritten") == [task.key] and keys(member, "fresh") == [task.key]
    task_services.task_update(caller=member, task_id=task.id, labels=["ui"])  # not searched: no rebuild needed
    assert keys(member, "rewritten") == [task.key]


def test_an_edited_or_deleted_comment_no_longer_matches(board, member) -> None:
    task = add(member, board, "Payments")
    comment_services.comment_add(caller=member, task_id=task.id, body="The webhook retries forever")
    second = comment_services.comment_add(caller=member, task_id=task.id, body="Ask about the ledger")
    assert keys(member, "webhook") == [task.key] and keys(member, "ledger") == [task.key]

    comment_services.comment_update(caller=member, comment_id=second.id, body="Ask about the reconciliation")
    assert keys(member, "ledger") == []
    assert keys(member, "reconciliation") == [task.key]

    comment_services.comment_delete(caller=member, comment_id=second.id)
    assert keys(member, "reconciliation") == []
    assert keys(member, "webhook") == [task.key]


def test_an_archived_card_is_found_and_marked(board, member) -> None:
    task = add(member, board, "Retired experiment")
    task_services.task_archive(caller=member, task_id=task.id)

    (hit,) = selectors.task_search(caller=member, text="experiment")
    assert hit["archived"] is True
    task_services.task_restore(caller=member, task_id=task.id)
    assert [hit["archived"] for hit in selectors.task_search(caller=member, text="experiment")] == [False]


def test_a_deleted_task_is_not_found(board, member, manager) -> None:
    task = add(member, board, "Temporary experiment")
    task_services.task_delete(caller=manager, task_id=task.id)

    assert keys(member, "experiment") == []
    assert not TaskSearch.objects.filter(task_id=task.id).exists()


def _search_row_version(task: Task) -> str:
    with connection.cursor() as cursor:
        # Where the row version lives: an UPDATE writes a new version elsewhere (one transaction: xmin would not tell).
        cursor.execute("SELECT ctid::text FROM projects_tasksearch WHERE task_id = %s", [task.id])
        return cursor.fetchone()[0]


def test_moves_and_other_edits_leave_the_search_row_alone(board, member, columns) -> None:
    task = add(member, board, "Stable", "words")
    before = _search_row_version(task)

    task_services.task_move(caller=member, task_id=task.id, column_id=columns[1].id)
    task_services.task_update(caller=member, task_id=task.id, labels=["ui"], priority="high")

    assert _search_row_version(task) == before  # never rewritten: no new GIN entries for a move
    task_services.task_update(caller=member, task_id=task.id, title="Renamed")
    assert _search_row_version(task) != before


def _vectors() -> dict[int, str]:
    return dict(TaskSearch.objects.values_list("task_id", "vector"))


def test_the_backfill_migration_fills_every_vector(board, member) -> None:
    tasks = [add(member, board, f"Backfilled {number}", "archaeology") for number in range(3)]
    comment_services.comment_add(caller=member, task_id=tasks[0].id, body="palimpsest")
    expected = _vectors()
    TaskSearch.objects.all().delete()
    assert keys(member, "archaeology") == []

    fill = importlib.import_module("apps.projects.migrations.0005_search_vector_fill")
    with connection.cursor() as cursor:
        cursor.execute(fill.FILL)

    assert _vectors() == expected
    assert len(keys(member, "archaeology")) == 3 and keys(member, "palimpsest") == [tasks[0].key]
    TaskSearch.objects.all().delete()
    assert tasks_search_refresh() == 3
    assert _vectors() == expected


def test_the_longest_texts_still_make_a_vector(board, member) -> None:
    words = " ".join(f"w{number:x}q" for number in range(25_000))  # ~150,000 characters, all different
    task = add(member, board, "Huge", words[:100_000])
    for _ in range(8):
        comment_services.comment_add(caller=member, task_id=task.id, body=words[-20_000:])

    assert keys(member, "w10q") == [task.key]


# Who sees what -------------------------------------------------------------------------------------


def test_a_private_projects_tasks_are_not_shown_to_a_non_member(board, member, manager, tenant_a) -> None:
    shown = add(member, board, "Shared roadmap")
    private = project_services.project_create(caller=manager, key="SECRET", name="Secret")
    hidden = add(manager, private.boards.get(), "Secret roadmap", "roadmap of the acquisition")
    owner = make_caller(tenant_a, "user-owner", roles=("owner",), permissions=MANAGER_PERMISSIONS)

    assert keys(member, "roadmap") == [shown.key]
    assert keys(member, hidden.key) == []  # not even by its exact key
    assert set(keys(manager, "roadmap")) == {shown.key, hidden.key}
    assert set(keys(owner, "roadmap")) == {shown.key, hidden.key}  # tenant owners read every project
    stranger = make_caller(tenant_a, "user-stranger", roles=("member",), permissions=MEMBER_PERMISSIONS)
    assert keys(stranger, "roadmap") == []


def test_tasks_of_an_archived_board_or_project_are_found_and_marked(board, member, manager, project) -> None:
    add(member, board, "Quarterly archive report")
    assert [hit["archived"] for hit in selectors.task_search(caller=member, text="archive")] == [False]

    board_services.board_update(caller=manager, board_id=board.id, archived=True)
    assert [hit["archived"] for hit in selectors.task_search(caller=member, text="archive")] == [True]
    board_services.board_update(caller=manager, board_id=board.id, archived=False)
    project_services.project_update(caller=manager, project_id=project.id, archived=True)
    assert [hit["archived"] for hit in selectors.task_search(caller=member, text="archive")] == [True]


def test_another_organizations_tasks_never_show(tenants, tenant_a: TenantInfo, board, member) -> None:
    mine = add(member, board, "Kangaroo migration")
    other = tenants["proj_b"]
    with schema_context("proj_b"):
        foreign_manager = make_caller(other, "user-manager", roles=("owner",), permissions=MANAGER_PERMISSIONS)
        foreign = project_services.project_create(caller=foreign_manager, key="DEMO", name="Theirs")
        add(foreign_manager, foreign.boards.get(), "Kangaroo census")
    as_owner = ApiClient(tenant_a, "user-owner", MANAGER_PERMISSIONS, roles=("owner",))

    response = as_owner.get("/api/search?q=kangaroo")

    assert response.status_code == 200, response.content
    assert [(item["key"], item["title"]) for item in response.json()["items"]] == [(mine.key, mine.title)]


# Odd input ------------------------------------------------------------------------------------------

# Each odd text, and what it finds in a tenant holding one task "Deploy script" (None: whatever it finds).
ODD_QUERIES = {
    "'&|!:*()": [],
    "' OR 1=1 --": [],
    "'; DROP TABLE projects_task; --": [],
    "a & b | !c": None,
    "deploy:* | x:A": [],  # every word must be there: "x" is not
    "deploy:*": ["DEMO-1"],
    "<-> <2> !!": [],
    '"unbalanced phrase': [],
    '""': [],
    "-": [],
    "-deploy": [],
    "or": [],
    "deploy or": ["DEMO-1"],
    "or deploy": None,
    "\\": [],
    "%": [],
    "%s %(user_id)s": [],
    "(((deploy": ["DEMO-1"],
    "deploy)))": ["DEMO-1"],
    "²³ ٣ ǅ 日本語": [],
    "DEMO-": ["DEMO-1"],
    "DEMO-99999999999999999999": [],
    "a" * 200: [],
    "😀 deploy": ["DEMO-1"],
    "DEPLOY\tSCRIPT": ["DEMO-1"],
}


@pytest.mark.parametrize(("text", "expected"), ODD_QUERIES.items())
def test_odd_input_is_searched_as_text_and_never_fails(board, member, text: str, expected: list | None) -> None:
    add(member, board, "Deploy script", "deploy the thing")

    hits = selectors.task_search(caller=member, text=text)

    assert isinstance(hits, list)
    if expected is not None:
        assert [hit["key"] for hit in hits] == expected
    assert Task.objects.count() == 1


def test_nothing_but_operators_runs_no_query(board, member) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert selectors.task_search(caller=member, text="'&|!:*()") == []
    assert len(queries) == 0


def test_a_search_is_one_query_however_many_tasks_match(board, member) -> None:
    add(member, board, "Needle one")
    with CaptureQueriesContext(connection) as one:
        assert len(selectors.task_search(caller=member, text="needle")) == 1
    for number in range(30):
        task = add(member, board, f"Needle {number}", "needle in the haystack")
        comment_services.comment_add(caller=member, task_id=task.id, body="another needle")
    with CaptureQueriesContext(connection) as many:
        assert len(selectors.task_search(caller=member, text="needle", limit=50)) == 31

    def statements(captured: CaptureQueriesContext) -> list[str]:  # savepoints: the test's own transaction
        return [query["sql"].split()[0] for query in captured.captured_queries if "SAVEPOINT" not in query["sql"]]

    assert statements(one) == statements(many) == ["SET", "WITH"]  # the statement and its planner setting


def test_the_search_can_use_the_gin_index(board, member) -> None:
    """With a few rows PostgreSQL rightly scans the table; bench/search.py shows the plan on 10,000."""
    add(member, board, "Indexed")
    query = SearchQuery.parse("index")
    params = search_params(query, user_id=member.user_id, limit=20)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # as selectors.task_search runs it
        cursor.execute("SET LOCAL enable_indexscan = off")  # and not by the primary key
        cursor.execute("EXPLAIN " + search_sql(query, every_project=True), params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "task_search_gin" in plan, plan


# Through the API and the page ----------------------------------------------------------------------


def test_the_api_answers_hits_in_the_contract_shape(api_board, as_member) -> None:
    created = as_member.post(
        "/api/tasks", {"board": api_board["id"], "title": "Onboarding", "description": "Write the welcome email"}
    ).json()

    response = as_member.get("/api/search?q=welcome")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["query"] == "welcome"
    (item,) = body["items"]
    assert {"id", "key", "title", "board", "project", "column", "snippet"} <= set(item)
    assert item["id"] == created["id"] and item["key"] == created["key"] and item["board"] == api_board["id"]
    assert item["column"] == created["column"] and item["column_name"] == "To do"
    assert item["snippet_html"] == "Write the <mark>welcome</mark> email"
    assert item["url"] == f"/boards/{api_board['id']}/?task={created['id']}"


def test_the_api_refuses_an_empty_or_too_long_query_clearly(api_board, as_member) -> None:
    assert_error(as_member.get("/api/search?q="), 400, "query_required")
    assert_error(as_member.get("/api/search?q=%20%20"), 400, "query_required")
    assert_error(as_member.get("/api/search"), 400, "query_required")
    error = assert_error(as_member.get("/api/search?q=" + "x" * 201), 400, "query_too_long")
    assert "200" in error["message"]
    assert_error(as_member.get("/api/search?q=a&limit=0"), 422)
    assert_error(as_member.get("/api/search?q=a&limit=51"), 422)
    assert as_member.get("/api/search?q=a&limit=50").status_code == 200


def test_the_api_needs_a_token(tenant_a) -> None:
    assert_error(Client().get("/api/search?q=x", HTTP_X_TENANT_ID=tenant_a.tenant_id), 401)


def test_the_search_page_shows_marked_escaped_hits_linking_to_the_open_card(api_board, as_member, tenant_a) -> None:
    created = as_member.post(
        "/api/tasks", {"board": api_board["id"], "title": "<b>Bold</b> move", "description": "Pack the <i>boxes</i>"}
    ).json()
    browser = Client()
    browser.cookies["access_token"] = as_member.headers["HTTP_AUTHORIZATION"].split()[1]

    page = browser.get("/search/?q=boxes", HTTP_X_TENANT_ID=tenant_a.tenant_id)

    html = page.content.decode()
    assert page.status_code == 200
    assert f'href="/boards/{api_board["id"]}/?task={created["id"]}"' in html
    assert "&lt;b&gt;Bold&lt;/b&gt; move" in html
    assert "Pack the &lt;i&gt;<mark>boxes</mark>&lt;/i&gt;" in html
    assert "1 task" in html
    none = browser.get("/search/?q=zebra", HTTP_X_TENANT_ID=tenant_a.tenant_id).content.decode()
    assert "No tasks match “zebra”" in none
    too_long = browser.get("/search/?q=" + "y" * 201, HTTP_X_TENANT_ID=tenant_a.tenant_id).content.decode()
    assert "at most 200 characters" in too_long and 'value="' + "y" * 201 + '"' in too_long
    empty = browser.get("/search/", HTTP_X_TENANT_ID=tenant_a.tenant_id)
    assert empty.status_code == 200 and "search-hit" not in empty.content.decode()
    anonymous = Client().get("/search/?q=boxes", HTTP_X_TENANT_ID=tenant_a.tenant_id)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login?next=")


def test_every_signed_in_page_offers_the_quick_open(api_board, as_member, tenant_a) -> None:
    browser = Client()
    browser.cookies["access_token"] = as_member.headers["HTTP_AUTHORIZATION"].split()[1]
    for path in ("/projects/", f"/boards/{api_board['id']}/", "/search/"):
        html = browser.get(path, HTTP_X_TENANT_ID=tenant_a.tenant_id).content.decode()
        assert "data-quick-open" in html and 'role="combobox"' in html and "js/quickopen.js" in html, path
