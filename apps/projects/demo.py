"""The demo board of CONTRACT.md: project DEMO in tenant `demo`, with a few columns and cards.

Built through the same services a user's clicks go through, as the demo owner (whose
token identity issues), so the demo emits the same events and live updates as real work.
"""

import datetime as dt
import time

import httpx
from django.conf import settings
from django.utils import timezone

from apps.common.auth import Claims, verify_access_token
from apps.projects.models import Board, Project
from apps.projects.services import projects as project_services
from apps.projects.services import tasks as task_services
from apps.projects.tenants.context import tenant_context
from apps.projects.tenants.models import Tenant

DEMO_SLUG = "demo"
DEMO_OWNER_EMAIL = "owner@demo.test"
DEMO_OWNER_PASSWORD = "demo-pass-123"  # noqa: S105 - the documented development login
DEMO_CARDS = (
    # (column index, title, labels, priority, due in days)
    (0, "Write the onboarding guide", ["docs"], "medium", 7),
    (0, "Invite the design team", [], "low", None),
    (0, "Plan the Q3 roadmap", ["planning"], "high", 14),
    (1, "Set up the staging environment", ["ops"], "high", 2),
    (1, "Review the pricing page copy", ["marketing"], "medium", 3),
    (2, "Create the DEMO project", ["setup"], "low", None),
)


class DemoNotReady(Exception):
    pass


def demo_tenant_wait(*, timeout: float, poll: float = 0.5) -> Tenant:
    """The demo tenant, once its storage is provisioned (that happens asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is not None and tenant.status == "active":
            return tenant
        if time.monotonic() > deadline:
            state = tenant.status if tenant else "not registered"
            raise DemoNotReady(f"tenant {DEMO_SLUG!r} is {state} after {timeout:g} s; is `consume projects` running?")
        time.sleep(poll)


def demo_owner_claims(*, tenant: Tenant) -> Claims:
    """Log in as the demo owner at identity, as a browser would, and verify the token."""
    response = httpx.post(
        f"{settings.SERVICE_URLS['identity']}/api/auth/token",
        json={"email": DEMO_OWNER_EMAIL, "password": DEMO_OWNER_PASSWORD},
        headers={"X-Tenant-ID": str(tenant.tenant_id), "X-Tenant-Slug": tenant.slug},
        timeout=30,
    )
    if response.status_code != 200:
        raise DemoNotReady(f"identity refused the demo login: {response.status_code} {response.text[:200]}")
    return verify_access_token(response.json()["access"], tenant_id=str(tenant.tenant_id))


def demo_board_seed(*, caller: Claims) -> Project:
    """Project DEMO with its board and cards; does nothing if DEMO exists."""
    existing = Project.objects.filter(key="DEMO").first()
    if existing is not None:
        return existing
    project = project_services.project_create(
        caller=caller, key="DEMO", name="Demo project", description="A tour of the board.", board_name="Launch"
    )
    board = Board.objects.get(project=project)
    columns = list(board.columns.order_by("position"))
    today = timezone.now().date()
    for column_index, title, labels, priority, due_in in DEMO_CARDS:
        task_services.task_create(
            caller=caller,
            board_id=board.id,
            column_id=columns[column_index].id,
            title=title,
            labels=labels,
            priority=priority,
            assignees=[caller.user_id] if column_index == 1 else [],
            due_date=today + dt.timedelta(days=due_in) if due_in is not None else None,
        )
    return project


def demo_seed(*, timeout: float = 120) -> str:
    """Seeds the demo board and says what it holds."""
    tenant = demo_tenant_wait(timeout=timeout)
    claims = demo_owner_claims(tenant=tenant)
    with tenant_context(tenant):
        project = demo_board_seed(caller=claims)
        return f"project {project.key} ready ({project.tasks.count()} cards)"


__all__ = ["DemoNotReady", "demo_seed"]
