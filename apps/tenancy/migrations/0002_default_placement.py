from django.db import migrations


def default_placement_create(apps, schema_editor):
    Placement = apps.get_model("tenancy", "Placement")
    Placement.objects.get_or_create(
        name="default", defaults={"description": "The projects service's own PostgreSQL server", "is_default": True}
    )


def default_placement_delete(apps, schema_editor):
    apps.get_model("tenancy", "Placement").objects.filter(name="default", tenants__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0001_initial")]

    operations = [migrations.RunPython(default_placement_create, default_placement_delete)]
