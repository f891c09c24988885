"""Fills the search vector of the tasks that exist (a data migration, apart from the schema's).

A frozen copy of apps.projects.search.REFRESH_ALL_SQL as it was written: a later change to how
the vector is built comes with its own migration that rebuilds it.
"""

from django.db import migrations

FILL = r"""
    WITH c AS (
      SELECT t.id, left(coalesce(string_agg(k.body, E'\n' ORDER BY k.created_at DESC, k.id DESC), ''), 50000) AS body
        FROM projects_task t LEFT JOIN projects_comment k ON k.task_id = t.id
       GROUP BY t.id
    )
    UPDATE projects_task t SET search_vector =
        setweight(('''#' || lower(t.key) || ''':1')::tsvector, 'A')
        || setweight(to_tsvector('english', t.title), 'A')
        || setweight(to_tsvector('simple', t.title), 'A')
        || setweight(to_tsvector('english', left(t.description, 50000)), 'B')
        || setweight(to_tsvector('simple', left(t.description, 50000)), 'B')
        || setweight(to_tsvector('english', c.body), 'C')
        || setweight(to_tsvector('simple', c.body), 'C')
      FROM c WHERE c.id = t.id
"""


class Migration(migrations.Migration):
    dependencies = [("projects", "0005_search_vector")]

    operations = [migrations.RunSQL(FILL, reverse_sql="UPDATE projects_task SET search_vector = NULL")]
