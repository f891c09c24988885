"""A projects-service process that changes a database-mode tenant's board, as a request would.

Run by tests/provisioning/test_tenant_outbox.py with EVENTS_FAULT_BREAKPOINT naming the point
to freeze at (apps/events/faults.py); the test then kills it with SIGKILL, as a crash would.
    python tests/provisioning/outbox_writer.py <tenant uuid> <project key>
"""

import os
import sys

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.projects")
    django.setup()
    from apps.projects.permissions import CallerClaims
    from apps.projects.services import projects as project_services
    from apps.projects.tenants.context import tenant_context
    from apps.projects.tenants.selectors import tenant_get

    tenant = tenant_get(tenant_id=sys.argv[1])
    owner = CallerClaims(
        user_id="owner-1", tenant_id=str(tenant.tenant_id), roles=("owner",), permissions=frozenset({"create_project"})
    )
    with tenant_context(tenant):
        project_services.project_create(caller=owner, key=sys.argv[2], name=f"Project {sys.argv[2]}")
    print("committed", flush=True)


if __name__ == "__main__":
    main()
