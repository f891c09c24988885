"""A project's labels: a name and a colour from the fixed palette (models.LABEL_PALETTE).

Tasks carry label names (Task.labels); every name a task of the project carries has its Label:
a task written with a new name creates it (`labels_ensure`, from the task services), renaming a
label renames it on every task that carries it, deleting one takes it off them. Names are unique
in a project whatever their case ("Bug" and "bug" are one label).
"""

from collections.abc import Iterable

from django.db import transaction
from django.db.models import F, Func, Value
from django.db.models.functions import Lower
from django.utils import timezone

from apps.common.exceptions import Conflict, NotFound
from apps.projects import live
from apps.projects.db import tenant_db
from apps.projects.errors import InvalidInput
from apps.projects.models import LABEL_NAME_LENGTH, LABEL_PALETTE, Board, Label, Task
from apps.projects.permissions import Caller, project_actions, require
from apps.projects.services.shared import locked_project

PALETTE = tuple(LABEL_PALETTE)
MAX_LABELS_PER_PROJECT = 200


def label_out(label: Label) -> dict:
    return {"id": label.id, "name": label.name, "colour": label.colour}


def _clean_name(name: str, *, field: str = "name") -> str:
    name = " ".join(name.split())
    if not name:
        raise InvalidInput("A label needs a name", code="validation_error", field=field)
    if len(name) > LABEL_NAME_LENGTH:
        raise InvalidInput(
            f"A label's name is at most {LABEL_NAME_LENGTH} characters", code="validation_error", field=field
        )
    return name


def _clean_colour(colour: str) -> str:
    colour = colour.strip().lower()
    if colour not in LABEL_PALETTE:
        raise InvalidInput(
            "colour must be one of the palette's colours",
            code="invalid_colour",
            field="colour",
            palette=list(PALETTE),
        )
    return colour


def colours_next(used: list[str], count: int = 1) -> list[str]:
    """The colours for `count` new labels next to labels coloured `used`: the palette's unused
    colours first, in order, then round the palette again."""
    picked = []
    taken = list(used)
    for _ in range(count):
        free = [colour for colour in PALETTE if colour not in taken]
        colour = free[0] if free else PALETTE[len(taken) % len(PALETTE)]
        picked.append(colour)
        taken.append(colour)
    return picked


def _next_colour(project_id: int) -> str:
    return colours_next(list(Label.objects.filter(project_id=project_id).values_list("colour", flat=True)))[0]


def _same_name(project_id: int, name: str, *, exclude: int | None = None) -> Label | None:
    labels = Label.objects.annotate(lower=Lower("name")).filter(project_id=project_id, lower=name.lower())
    if exclude is not None:
        labels = labels.exclude(pk=exclude)
    return labels.first()


def _labels_broadcast(project_id: int, *, resync: bool) -> None:
    """Tell the project's boards the labels changed; `resync` when tasks' labels changed too."""
    labels = [label_out(label) for label in Label.objects.filter(project_id=project_id).order_by("name", "id")]
    for board_id in Board.objects.filter(project_id=project_id).values_list("id", flat=True):
        live.board_broadcast(board_id=board_id, event="labels.updated", data={"labels": labels})
        if resync:
            live.board_broadcast(board_id=board_id, event="resync", data={"reason": "labels"})


def label_create(*, caller: Caller, project_id: int, name: str, colour: str | None = None) -> Label:
    name = _clean_name(name)
    with transaction.atomic(using=tenant_db()):
        project = locked_project(project_id)
        require(project_actions(caller=caller, project_id=project.id), "edit_columns")
        existing = _same_name(project.id, name)
        if existing is not None:
            raise Conflict(f"The project already has the label “{existing.name}”", code="duplicate_label", field="name")
        if Label.objects.filter(project_id=project.id).count() >= MAX_LABELS_PER_PROJECT:
            raise Conflict(f"A project has at most {MAX_LABELS_PER_PROJECT} labels", code="too_many_labels")
        label = Label.objects.create(
            project=project, name=name, colour=_clean_colour(colour) if colour else _next_colour(project.id)
        )
        _labels_broadcast(project.id, resync=False)
    return label


def _locked_label(caller: Caller, label_id: int) -> Label:
    label = Label.objects.select_for_update().filter(pk=label_id).first()
    if label is None:
        raise NotFound("No such label")
    require(project_actions(caller=caller, project_id=label.project_id), "edit_columns", what="label")
    return label


def _tasks_relabel(project_id: int, old: str, new: str | None) -> int:
    """Rename (or, new None, remove) a label on every task of the project that carries it."""
    tasks = Task.objects.filter(project_id=project_id, labels__contains=[old])
    if new is None:
        labels = Func(F("labels"), Value(old), function="array_remove")
    else:
        labels = Func(F("labels"), Value(old), Value(new), function="array_replace")
    return tasks.update(labels=labels, version=F("version") + 1, updated_at=timezone.now())


def label_update(*, caller: Caller, label_id: int, name: str | None = None, colour: str | None = None) -> Label:
    """Rename (every task carrying the label is renamed with it) or recolour a label."""
    with transaction.atomic(using=tenant_db()):
        label = _locked_label(caller, label_id)
        locked_project(label.project_id)  # one label write per project at a time: names stay unique
        renamed = False
        if name is not None:
            name = _clean_name(name)
            if name != label.name:
                existing = _same_name(label.project_id, name, exclude=label.id)
                if existing is not None:
                    raise Conflict(
                        f"The project already has the label “{existing.name}”", code="duplicate_label", field="name"
                    )
                _tasks_relabel(label.project_id, label.name, name)
                label.name, renamed = name, True
        if colour is not None:
            label.colour = _clean_colour(colour)
        label.save(update_fields=["name", "colour"])
        _labels_broadcast(label.project_id, resync=renamed)
    return label


def label_delete(*, caller: Caller, label_id: int) -> None:
    """Delete a label; the tasks that carried it lose it."""
    with transaction.atomic(using=tenant_db()):
        label = _locked_label(caller, label_id)
        _tasks_relabel(label.project_id, label.name, None)
        project_id = label.project_id
        label.delete()
        _labels_broadcast(project_id, resync=True)


def labels_ensure(*, project_id: int, names: Iterable[str]) -> list[str]:
    """The project's spelling of each name (a name differing only in case is the same label),
    creating the labels it lacks, coloured round the palette. Inside the caller's transaction;
    one query when every name exists."""
    wanted = [_clean_name(name, field="labels") for name in names]
    if not wanted:
        return []

    def spelled(lowers: Iterable[str]) -> dict[str, str]:
        labels = Label.objects.annotate(lower=Lower("name")).filter(project_id=project_id, lower__in=list(lowers))
        return dict(labels.values_list("lower", "name"))

    existing = spelled(name.lower() for name in wanted)
    missing: dict[str, str] = {}
    for name in wanted:
        if name.lower() not in existing:
            missing.setdefault(name.lower(), name)
    if missing:
        used = list(Label.objects.filter(project_id=project_id).values_list("colour", flat=True))
        if len(used) + len(missing) > MAX_LABELS_PER_PROJECT:
            raise Conflict(f"A project has at most {MAX_LABELS_PER_PROJECT} labels", code="too_many_labels")
        Label.objects.bulk_create(
            [
                Label(project_id=project_id, name=name, colour=colour)
                for name, colour in zip(missing.values(), colours_next(used, len(missing)), strict=True)
            ],
            ignore_conflicts=True,  # another transaction made the same label meanwhile: theirs stands
        )
        existing.update(spelled(missing))
        _labels_broadcast(project_id, resync=False)
    return list(dict.fromkeys(existing[name.lower()] for name in wanted))
