from django.db import migrations
from django.db.models import F


def sent_at_from_created_at(apps, schema_editor):
    """Invitations from before resend were mailed once, when they were created."""
    apps.get_model("identity", "Invitation").objects.update(sent_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0004_invitation_project_and_sent_at"),
    ]

    operations = [
        migrations.RunPython(sent_at_from_created_at, migrations.RunPython.noop),
    ]
