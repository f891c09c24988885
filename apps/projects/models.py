"""The board domain. These tables live in each tenant's schema (a django-tenants TENANT_APP).

People are referenced by the identity service's user id (the token's `sub`), never by a
foreign key: users live in another service's database.
"""

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower

from apps.projects.storage import attachment_storage, attachment_upload_to

USER_ID_LENGTH = 64
# Ranks compare byte by byte whatever the database's locale is.
RANK_COLLATION = "C"


class ProjectRole(models.TextChoices):
    VIEWER = "viewer"
    MEMBER = "member"
    MANAGER = "manager"


class ColumnCategory(models.TextChoices):
    TODO = "todo"
    DOING = "doing"
    DONE = "done"


# The fixed palette labels are coloured from (white text reads on each, WCAG AA): hex -> name.
LABEL_PALETTE: dict[str, str] = {
    "#216e4e": "green",
    "#206a83": "teal",
    "#0c66e4": "blue",
    "#6e5dc6": "purple",
    "#ae4787": "magenta",
    "#c9372c": "red",
    "#a54800": "orange",
    "#7f5f01": "yellow",
    "#4c6b1f": "lime",
    "#626f86": "grey",
}
LABEL_NAME_LENGTH = 40


class Priority(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class Project(models.Model):
    key = models.CharField(
        max_length=10,
        unique=True,
        validators=[RegexValidator(r"^[A-Z][A-Z0-9]{1,9}$", "2-10 capital letters or digits, starting with a letter")],
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # The last task number handed out: DEMO-42 is task number 42 of project DEMO.
    task_counter = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)
    created_by = models.CharField(max_length=USER_ID_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # An archived project is hidden from lists and read-only until restored.
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class ProjectMember(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user_id = models.CharField(max_length=USER_ID_LENGTH)
    role = models.CharField(max_length=10, choices=ProjectRole.choices, default=ProjectRole.MEMBER)
    display_name = models.CharField(max_length=200, blank=True)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user_id"], name="project_member_unique")]
        indexes = [models.Index(fields=["user_id"], name="project_member_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.project_id} as {self.role}"


class Board(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="boards")
    name = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    # An archived board is hidden from lists and read-only until restored.
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project_id", "position", "id"]

    def __str__(self) -> str:
        return self.name


class Label(models.Model):
    """A project's label: tasks carry label names (Task.labels); this gives each its colour.

    Every name a task of the project carries has its Label (services/labels.py keeps it so)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=LABEL_NAME_LENGTH)
    colour = models.CharField(max_length=7, choices=list(LABEL_PALETTE.items()))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "name", "id"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "project", name="label_project_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Column(models.Model):
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="columns")
    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)
    wip_limit = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    category = models.CharField(max_length=5, choices=ColumnCategory.choices, default=ColumnCategory.TODO)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["board_id", "position", "id"]

    def __str__(self) -> str:
        return self.name


class Task(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="tasks")
    column = models.ForeignKey(Column, on_delete=models.PROTECT, related_name="tasks")
    number = models.PositiveIntegerField()
    key = models.CharField(max_length=24, unique=True)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True, help_text="Markdown")
    # A fractional rank (see ranks.py): a move rewrites only the moved task's row.
    rank = models.CharField(max_length=255, db_collation=RANK_COLLATION)
    assignees = ArrayField(models.CharField(max_length=USER_ID_LENGTH), default=list, blank=True)
    labels = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    reporter_id = models.CharField(max_length=USER_ID_LENGTH)
    priority = models.CharField(max_length=6, choices=Priority.choices, default=Priority.MEDIUM)
    due_date = models.DateField(null=True, blank=True)
    estimate_minutes = models.PositiveIntegerField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    # An archived task is off the board (and out of its column's WIP count) until restored.
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["column_id", "rank", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="task_project_number_unique")]
        indexes = [
            models.Index(fields=["column", "rank"], name="task_column_rank_idx"),
            models.Index(fields=["board", "column", "rank"], name="task_board_order_idx"),
            GinIndex(fields=["assignees"], name="task_assignees_gin"),
            GinIndex(fields=["labels"], name="task_labels_gin"),
        ]

    def __str__(self) -> str:
        return self.key


class TaskSearch(models.Model):
    """A task's full-text search vector: key and title (weight A), description (B), comments (C).

    Written only by services.search.task_search_refresh (apps/projects/search.py says how it is
    built and read). A row of its own, not a column of Task: a move, an assignment or any other
    write of the task's row never rewrites the vector nor its GIN index entries, and a search
    scans narrow rows.
    """

    task = models.OneToOneField(Task, on_delete=models.CASCADE, primary_key=True, related_name="search")
    # Who may read it. No index of its own: a search must filter the GIN index's matches by project,
    # not read a whole project's vectors to test each (a project's deletion scans this table, rarely).
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    vector = SearchVectorField()

    class Meta:
        indexes = [GinIndex(fields=["vector"], name="task_search_gin")]

    def __str__(self) -> str:
        return f"search vector of {self.task_id}"


class Subtask(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="subtasks")
    title = models.CharField(max_length=300)
    done = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task_id", "position", "id"]

    def __str__(self) -> str:
        return self.title


class Comment(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="comments")
    author_id = models.CharField(max_length=USER_ID_LENGTH)
    body = models.TextField(help_text="Markdown")
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["task_id", "created_at", "id"]

    def __str__(self) -> str:
        return f"comment {self.pk} on {self.task_id}"


class Attachment(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(storage=attachment_storage, upload_to=attachment_upload_to, max_length=300)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    uploaded_by = models.CharField(max_length=USER_ID_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task_id", "created_at", "id"]

    def __str__(self) -> str:
        return self.filename


class WorkLog(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="worklogs")
    user_id = models.CharField(max_length=USER_ID_LENGTH)
    day = models.DateField()
    minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task_id", "day", "id"]
        indexes = [models.Index(fields=["user_id", "day"], name="worklog_user_day_idx")]
        constraints = [models.CheckConstraint(condition=models.Q(minutes__gte=1), name="worklog_minutes_positive")]

    def __str__(self) -> str:
        return f"{self.minutes} min by {self.user_id} on {self.day}"


class Activity(models.Model):
    """What happened to a task, newest last: the task's history in its card panel."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="activities")
    actor_id = models.CharField(max_length=USER_ID_LENGTH)
    verb = models.CharField(max_length=40)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task_id", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.verb} on {self.task_id}"


class Person(models.Model):
    """Someone of the organization, as identity's user events describe them: the names the board
    shows instead of user ids. Kept by apps/projects/handlers.py; `initials`, `palette` and
    `colour` are derived when the row is written (services/people.py), so the board's one SQL
    statement can show them."""

    user_id = models.CharField(max_length=USER_ID_LENGTH, unique=True)
    name = models.CharField(max_length=200, blank=True)
    email = models.CharField(max_length=254, blank=True)
    initials = models.CharField(max_length=3)
    palette = models.PositiveSmallIntegerField()
    colour = models.CharField(max_length=7)
    # False once the person left the organization: their name stays on what they did.
    is_member = models.BooleanField(default=True)
    # Their roles in the organization (identity's), as of the last UserPermissionChanged.
    roles = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "user_id"]

    def __str__(self) -> str:
        return self.name or self.email or self.user_id


class SharedLinkEnd(models.Model):
    """A short link of one of the tenant's tasks that ended (the shortener's URLExpired: revoked,
    expired, used up): its shared view refuses the passes it gave out (apps/projects/share.py)."""

    code = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=32)
    ended_at = models.DateTimeField()
    # The URLExpired event that said so.
    event_id = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.code} ({self.reason})"
