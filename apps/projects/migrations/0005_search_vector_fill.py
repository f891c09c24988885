"""Fills the search rows of the tasks that exist (a data migration, apart from the schema's).

A frozen copy of apps.projects.search.REFRESH_ALL_SQL as it was written: a later change to how
the vector is built comes with its own migration that rebuilds it.
"""

from django.db import migrations

FILL = r"""
    INSERT INTO projects_tasksearch (task_id, project_id, vector)
    SELECT t.id, t.project_id,
        setweight(('''#' || lower(t.key) || ''':1')::tsvector, 'A')
        || setweight(to_tsvector('english', t.title), 'A')
        || setweight(to_tsvector('simple', t.title), 'A')
        || setweight(to_tsvector('english', left(t.description, 50000)), 'B')
        || setweight(to_tsvector('simple', left(t.description, 50000)), 'B')
        || setweight(to_tsvector('english', c.body), 'C')
        || setweight(to_tsvector('simple', c.body), 'C')
      FROM projects_task t
      CROSS JOIN LATERAL (SELECT left(coalesce(string_agg(k.body, E'\n' ORDER BY k.created_at DESC, k.id DESC), ''), 50000) AS body FROM projects_comment k WHERE k.task_id = t.id) c
    ON CONFLICT (task_id) DO UPDATE SET project_id = EXCLUDED.project_id, vector = EXCLUDED.vector
"""


class Migration(migrations.Migration):
    dependencies = [("projects", "0005_search_vector")]

    operations = [migrations.RunSQL(FILL, reverse_sql="DELETE FROM projects_tasksearch")]
