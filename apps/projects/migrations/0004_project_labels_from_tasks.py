"""Give every label name the tasks already carry its Label row, coloured round the palette."""

from django.db import migrations

PALETTE = ("#216e4e", "#206a83", "#0c66e4", "#6e5dc6", "#ae4787", "#c9372c", "#a54800", "#7f5f01", "#4c6b1f", "#626f86")


def labels_from_tasks(apps: object, schema_editor: object) -> None:
    task_model = apps.get_model("projects", "Task")  # type: ignore[attr-defined]
    label_model = apps.get_model("projects", "Label")  # type: ignore[attr-defined]
    using = schema_editor.connection.alias  # type: ignore[attr-defined]
    names: dict[int, dict[str, str]] = {}
    for project_id, labels in task_model.objects.using(using).values_list("project_id", "labels").iterator():
        seen = names.setdefault(project_id, {})
        for name in labels:
            seen.setdefault(name.lower(), name)
    label_model.objects.using(using).bulk_create(
        label_model(project_id=project_id, name=name, colour=PALETTE[index % len(PALETTE)])
        for project_id, seen in names.items()
        for index, name in enumerate(sorted(seen.values(), key=str.lower))
    )


def labels_forget(apps: object, schema_editor: object) -> None:
    apps.get_model("projects", "Label").objects.using(schema_editor.connection.alias).all().delete()  # type: ignore[attr-defined]


class Migration(migrations.Migration):
    dependencies = [("projects", "0003_project_settings")]

    operations = [migrations.RunPython(labels_from_tasks, labels_forget)]
