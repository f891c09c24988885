"""Wakes the relay on commit: NOTIFY inside the inserting transaction is delivered only if it commits.

One NOTIFY per INSERT statement (PostgreSQL folds identical notifications of one
transaction into one), so a publishing transaction costs no extra round trip.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION events_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events_outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_outbox_notify AFTER INSERT ON events_outboxevent
    FOR EACH STATEMENT EXECUTE FUNCTION events_outbox_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS events_outbox_notify ON events_outboxevent;
DROP FUNCTION IF EXISTS events_outbox_notify();
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
