from apps.projects.demo import DEMO_CARDS, demo_board_seed
from apps.projects.models import Project, Task
from apps.projects.permissions import CallerClaims


def test_demo_board_has_columns_and_cards_in_order(manager: CallerClaims) -> None:
    owner = CallerClaims(
        user_id=manager.user_id,
        tenant_id=manager.tenant_id,
        roles=("owner",),
        permissions=manager.permissions | {"create_project"},
    )

    project = demo_board_seed(caller=owner)

    assert project.key == "DEMO"
    board = project.boards.get()
    assert [column.name for column in board.columns.order_by("position")] == ["To do", "In progress", "Done"]
    assert Task.objects.filter(project=project).count() == len(DEMO_CARDS)
    first_column_titles = [title for column, title, *_ in DEMO_CARDS if column == 0]
    assert (
        list(Task.objects.filter(column__position=0).order_by("rank").values_list("title", flat=True))
        == first_column_titles
    )


def test_demo_seed_twice_changes_nothing(manager: CallerClaims) -> None:
    owner = CallerClaims(
        user_id=manager.user_id,
        tenant_id=manager.tenant_id,
        roles=("owner",),
        permissions=manager.permissions | {"create_project"},
    )
    demo_board_seed(caller=owner)

    demo_board_seed(caller=owner)

    assert Project.objects.filter(key="DEMO").count() == 1
    assert Task.objects.count() == len(DEMO_CARDS)
