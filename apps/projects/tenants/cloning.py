"""Copies the template schema's structure into a new tenant schema in one round trip.

The template schema is migrated once; a new tenant gets its tables by copying, not by
replaying every migration, so provisioning time stays flat as migrations accumulate.

The copy is generated from the catalog once per template version and cached:
`CREATE TABLE ... (LIKE template.t ...)` for columns, defaults and identity; then every
constraint and index by its template name (migrations address them by name later); then
the template's rows (django_migrations above all: the clone is born "migrated").
A template holding things this copier does not handle (views, triggers, functions,
free-standing sequences) raises UnsupportedTemplate, and the caller falls back to
django-tenants' slower but general `clone_schema`.
"""

from dataclasses import dataclass

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper


class UnsupportedTemplate(Exception):
    pass


@dataclass(frozen=True)
class CloneScript:
    template_schema: str
    body: str  # runs with search_path = the new schema

    def for_schema(self, quoted_schema: str) -> str:
        return f"CREATE SCHEMA {quoted_schema};\nSET LOCAL search_path = {quoted_schema};\n{self.body}"


_LIKE_OPTIONS = (
    "INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED INCLUDING STORAGE "
    "INCLUDING COMMENTS INCLUDING COMPRESSION"
)


def _unsupported_objects(cursor: object, schema: str) -> list[str]:
    cursor.execute(
        """
        SELECT c.relname::text || ' (' || c.relkind::text || ')'
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = %(schema)s
           AND (c.relkind IN ('v', 'm', 'f')
                OR (c.relkind = 'S' AND NOT EXISTS (
                    SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('i', 'a'))))
        UNION ALL
        SELECT t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = %(schema)s AND NOT t.tgisinternal
        UNION ALL
        SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = %(schema)s
        """,
        {"schema": schema},
    )
    return [row[0] for row in cursor.fetchall()]


def clone_script_build(*, connection: BaseDatabaseWrapper, template_schema: str) -> CloneScript:
    """Reads the template's catalog (search_path = the template, so references print unqualified)."""
    # SET LOCAL needs a transaction; the catalog is read under a savepoint when nested.
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        unsupported = _unsupported_objects(cursor, template_schema)
        if unsupported:
            raise UnsupportedTemplate(f"template {template_schema} holds {', '.join(sorted(unsupported))}")
        cursor.execute("SELECT quote_ident(%s)", [template_schema])
        quoted_template = cursor.fetchone()[0]
        cursor.execute(f"SET LOCAL search_path = {quoted_template}")
        cursor.execute(
            """
            SELECT c.oid, quote_ident(c.relname)
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
             ORDER BY c.relname
            """,
            [template_schema],
        )
        tables = cursor.fetchall()
        statements = [f"CREATE TABLE {table} (LIKE {quoted_template}.{table} {_LIKE_OPTIONS});" for _, table in tables]
        cursor.execute(
            """
            SELECT quote_ident(c.relname), quote_ident(con.conname), pg_get_constraintdef(con.oid)
              FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = %s AND con.contype IN ('p', 'u', 'c', 'x', 'f')
             ORDER BY con.contype = 'f', c.relname, con.conname
            """,
            [template_schema],
        )
        statements += [
            f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition};" for table, name, definition in cursor.fetchall()
        ]
        cursor.execute(
            """
            SELECT pg_get_indexdef(i.indexrelid)
              FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
              JOIN pg_namespace n ON n.oid = ic.relnamespace
             WHERE n.nspname = %s
               AND NOT EXISTS (SELECT 1 FROM pg_constraint con
                                WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                                  AND con.contype IN ('p', 'u', 'x'))
             ORDER BY ic.relname
            """,
            [template_schema],
        )
        qualified_on = f" ON {quoted_template}."
        qualified_on_only = f" ON ONLY {quoted_template}."
        for (definition,) in cursor.fetchall():
            definition = definition.replace(qualified_on_only, " ON ONLY ", 1).replace(qualified_on, " ON ", 1)
            statements.append(f"{definition};")
        statements += _data_copy_statements(cursor, template_schema, quoted_template, tables)
    return CloneScript(template_schema=template_schema, body="\n".join(statements))


def _data_copy_statements(cursor: object, schema: str, quoted_template: str, tables: list[tuple]) -> list[str]:
    """The template's rows (django_migrations, content types, reference data), identities re-seeded."""
    statements = []
    for oid, table in tables:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {quoted_template}.{table})")  # noqa: S608 - catalog names
        if not cursor.fetchone()[0]:
            continue
        cursor.execute(
            """
            SELECT quote_ident(attname), attname, attidentity <> ''
              FROM pg_attribute
             WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
             ORDER BY attnum
            """,
            [oid],
        )
        columns = cursor.fetchall()
        names = ", ".join(quoted for quoted, _, _ in columns)
        # Names come from the catalog through quote_ident.
        statements.append(f"INSERT INTO {table} ({names}) SELECT {names} FROM {quoted_template}.{table};")  # noqa: S608
        for quoted, raw, is_identity in columns:
            if is_identity:
                reseed = (
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{raw}'), "  # noqa: S608
                    f"(SELECT COALESCE(MAX({quoted}), 0) + 1 FROM {table}), false);"
                )
                statements.append(reseed)
    return statements
