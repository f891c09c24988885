from django.db import migrations, models


class Migration(migrations.Migration):
    """Cards archived off the board, and comments' edited marker (issue 10)."""

    dependencies = [
        ("projects", "0004_project_labels_from_tasks"),
    ]

    operations = [
        migrations.AddField(
            model_name="comment",
            name="edited_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="task",
            name="archived_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
