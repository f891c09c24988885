"""A database-mode tenant's events: written in its own database's transaction, then moved to the
service's outbox, idempotently by event id (docs/adr/0001-database-mode-routing.md).

The board change and its event commit together in the tenant's database: `publish(...,
using=<tenant alias>)` writes `events_outboxevent` in the tenant's schema. A move copies those
rows, in the tenant's id order, into the service's outbox (`default`, public schema, which the
relay sends) with `INSERT ... ON CONFLICT (event_id) DO NOTHING`, commits, and only then deletes
them from the tenant's outbox. A crash anywhere in between loses nothing (the rows wait in the
tenant's outbox for the next move) and duplicates nothing (moving an event id again is a no-op,
and consumers also skip an event id they applied).

Moves run right after the tenant's commit (an on-commit hook, in the process that wrote) and, as
the safety net for a process that died first, in the relay (`EVENTS_RELAY_SWEEPERS`: every
active database-mode tenant every `EVENTS_RELAY_SWEEP_SECONDS`). Movers need no lock between
them: each copies every row it sees, in id order, in one statement, and a row leaves the
tenant's outbox only once it is in the central one, so what a later mover sees beyond an earlier
one's rows was committed later; one aggregate's events (written under its row lock) keep their
order.
"""

import logging
from contextlib import nullcontext

from django.db import DatabaseError, connections, transaction
from django_tenants.utils import quote_schema_name

from apps.events.faults import fault_point
from apps.events.outbox import OUTBOX_TABLE_DDL, OutboxError
from apps.projects.tenants.context import current_tenant, tenant_alias, tenant_context
from apps.projects.tenants.models import Isolation, ProvisioningStatus, Tenant

logger = logging.getLogger(__name__)

MOVE_BATCH_SIZE = 500

_SELECT = (
    "SELECT id, event_id, event_type, routing_key, tenant_id, aggregate_id, body"
    " FROM events_outboxevent ORDER BY id LIMIT %s"
)
_INSERT_CENTRAL = (
    "INSERT INTO events_outboxevent (event_id, event_type, routing_key, tenant_id, aggregate_id, body)"
    " VALUES {} ON CONFLICT (event_id) DO NOTHING"
)
_DELETE = "DELETE FROM events_outboxevent WHERE id = ANY(%s)"


def tenant_outbox_ensure(*, alias: str, schema: str) -> None:
    """The outbox table in one schema of a tenant (or template) database, as its owner."""
    with connections[alias].cursor() as cursor:
        cursor.execute(OUTBOX_TABLE_DDL.format(schema=quote_schema_name(schema)))


def _move_batch(alias: str) -> tuple[int, int]:
    """One batch, three round trips: (rows taken from the tenant's outbox, rows new to the central one)."""
    central = connections["default"]
    if central.in_atomic_block:
        # The tenant's rows may be deleted only once the central copy is committed, not merely written.
        raise OutboxError("tenant_outbox_move() must run outside a transaction on the default database")
    with connections[alias].cursor() as cursor:
        cursor.execute(_SELECT, [MOVE_BATCH_SIZE])
        rows = cursor.fetchall()
    if not rows:
        return 0, 0
    # One statement in autocommit: the whole batch is copied (and committed) or none of it.
    with central.cursor() as cursor:
        cursor.execute(
            _INSERT_CENTRAL.format(", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))),
            [value for row in rows for value in row[1:]],
        )
        inserted = cursor.rowcount
    fault_point("tenant_outbox.after_central_commit")
    with connections[alias].cursor() as cursor:
        cursor.execute(_DELETE, [[row[0] for row in rows]])
    return len(rows), inserted


def tenant_outbox_move(tenant: Tenant) -> int:
    """Moves every event waiting in a database-mode tenant's outbox to the service's.

    Returns how many were new there (an event already copied by a mover that died is not counted).
    """
    moved = 0
    active = current_tenant()
    # Already in its context (the after-commit move): entering it again would reset both connections'
    # search paths, a round trip each way.
    context = nullcontext() if active is not None and active.pk == tenant.pk else tenant_context(tenant)
    with context:
        alias = tenant_alias(tenant)
        while True:
            taken, inserted = _move_batch(alias)
            moved += inserted
            if taken < MOVE_BATCH_SIZE:
                return moved


class _MoveAfterCommit:
    """The on-commit hook of a tenant transaction that published: one per transaction and tenant."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant

    def __call__(self) -> None:
        fault_point("tenant_outbox.before_move")
        if connections["default"].in_atomic_block:
            # Inside a transaction on default (a test, a nested caller): move once that one commits.
            transaction.on_commit(self, using="default", robust=True)
            return
        try:
            tenant_outbox_move(self.tenant)
        except (DatabaseError, OutboxError):
            # The events are safe in the tenant's outbox; the relay's next sweep moves them.
            logger.warning("moving tenant %s's events failed; the relay will", self.tenant.slug, exc_info=True)


def tenant_outbox_move_after_commit(tenant: Tenant, *, using: str) -> None:
    """Asks for a move once the tenant transaction on `using` commits (nothing if it rolls back)."""
    pending = connections[using].run_on_commit
    if any(isinstance(hook, _MoveAfterCommit) and hook.tenant.pk == tenant.pk for _, hook, _ in pending):
        return
    transaction.on_commit(_MoveAfterCommit(tenant), using=using, robust=True)


def tenant_outboxes_sweep() -> int:
    """The relay's safety net: moves what any active database-mode tenant's outbox still holds.

    A tenant whose database fails is logged and skipped (the next sweep tries again); the
    connection to each tenant database is closed after its move, so the relay holds none.
    """
    moved = 0
    tenants = Tenant.objects.filter(isolation=Isolation.DATABASE, status=ProvisioningStatus.ACTIVE).order_by("pk")
    for tenant in tenants:
        try:
            moved += tenant_outbox_move(tenant)
        except DatabaseError:
            logger.warning("sweeping the outbox of tenant %s failed", tenant.slug, exc_info=True)
        finally:
            connections[tenant_alias(tenant)].close()
    return moved
