"""Reliability attacks on the running stack (issue 8, items 7 and 9), through the gateway.

- A consumer process is killed with SIGKILL: the launcher says so, restarts it, and events flow.
- A service's gunicorn master is killed with SIGKILL: it comes back on its port.
- The template database vanishes under a running consumer that had used it: the next
  database-mode signup still becomes active (the template is made again).
"""

import os
import secrets
import time

import httpx
import psutil
import psycopg
import pytest
from psycopg import sql

from tests.e2e.stack import Stack
from tests.security.conftest import DB_PREFIX, tenant_host

POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
ACTIVE_TIMEOUT = 60
PASSWORD = "Stack-reliability-pass-4821"

pytestmark = pytest.mark.e2e


def sign_up_until_active(client: httpx.Client, *, isolation: str) -> dict:
    slug = f"rel-{isolation[:2]}-{secrets.token_hex(3)}"
    created = client.post(
        "/api/tenants",
        json={
            "name": f"Reliability {slug}",
            "slug": slug,
            "owner_email": f"owner@{slug}.test",
            "owner_password": PASSWORD,
            "isolation": isolation,
        },
    )
    assert created.status_code in (201, 202), created.text
    deadline = time.monotonic() + ACTIVE_TIMEOUT
    while True:
        status = client.get(f"/api/tenants/{slug}")
        assert status.status_code == 200, status.text
        body = status.json()
        if body["status"] == "active":
            return body
        assert body["status"] != "failed", body
        assert time.monotonic() < deadline, f"{slug} not active after {ACTIVE_TIMEOUT} s: {body}"
        time.sleep(0.3)


def stack_child(stack: Stack, *argv_tail: str) -> psutil.Process:
    """The process of this stack (a child of its launcher) whose command line ends with argv_tail."""
    for child in psutil.Process(stack.process.pid).children():
        if tuple(child.cmdline()[-len(argv_tail) :]) == argv_tail:
            return child
    raise AssertionError(f"no {' '.join(argv_tail)} under the launcher:\n{stack.log_tail()}")


def wait_for_line(stack: Stack, text: str, *, after: int, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in stack.lines[after:]:
            if text in line:
                return line
        time.sleep(0.1)
    raise AssertionError(f"the launcher never said {text!r}:\n{stack.log_tail()}")


def test_the_launcher_says_where_mail_goes(stack: Stack) -> None:
    said = "\n".join(stack.lines)
    assert f"every process sends to the SMTP server on 127.0.0.1:{stack.port_base + 9}" in said
    assert str(stack.data_dir / "mail") in said


def test_a_consumer_killed_with_sigkill_is_restarted_and_events_still_flow(stack: Stack, client: httpx.Client) -> None:
    victim = stack_child(stack, "manage.py", "consume", "projects")
    seen = len(stack.lines)

    victim.kill()  # SIGKILL, to this one process of our own stack
    victim.wait(10)

    wait_for_line(stack, "consume-projects was killed by SIGKILL", after=seen)
    wait_for_line(stack, "consume-projects: restarted", after=seen, timeout=30)
    replacement = stack_child(stack, "manage.py", "consume", "projects")
    assert replacement.pid != victim.pid
    # Provisioning is consume-projects' work: a signup made now still becomes active.
    assert sign_up_until_active(client, isolation="schema")["status"] == "active"


def test_a_service_whose_master_is_killed_comes_back_on_its_port(stack: Stack, client: httpx.Client) -> None:
    """A SIGKILLed gunicorn master leaves its worker holding the port; the launcher clears it and restarts."""
    bind = f"127.0.0.1:{stack.port_base + 1}"  # identity
    victim = next((child for child in psutil.Process(stack.process.pid).children() if bind in child.cmdline()), None)
    assert victim is not None, stack.log_tail()
    seen = len(stack.lines)

    victim.kill()
    victim.wait(10)

    wait_for_line(stack, "identity was killed by SIGKILL", after=seen)
    wait_for_line(stack, "identity: restarted", after=seen)
    deadline = time.monotonic() + 60
    while (health := client.get("/healthz")).status_code != 200:
        assert time.monotonic() < deadline, f"{health.text}\n{stack.log_tail()}"
        time.sleep(0.3)
    jwks = client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200 and jwks.json()["keys"]


def test_a_vanished_template_database_does_not_stop_database_mode_signups(client: httpx.Client) -> None:
    sign_up_until_active(client, isolation="database")  # the consumer now has the template in hand
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as server:
        # <prefix>tenant_template, plus TEST_DB_SUFFIX when the run sets one (config/settings/projects.py).
        pattern = DB_PREFIX.replace("_", r"\_") + r"tenant\_template%"
        [(template,)] = server.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [pattern]).fetchall()
        server.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(template)))

    tenant = sign_up_until_active(client, isolation="database")

    assert tenant["isolation"] == "database"
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as server:
        assert server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template]).fetchone()

    # The remade template carries the tenant outbox: a board change's event commits in the tenant's
    # database and reaches the service's outbox, and the relay sends it.
    host = {"Host": tenant_host(tenant["slug"])}
    token = client.post(
        "/api/auth/token", headers=host, json={"email": f"owner@{tenant['slug']}.test", "password": PASSWORD}
    )
    assert token.status_code == 200, token.text
    created = client.post(
        "/api/projects",
        headers={**host, "Authorization": f"Bearer {token.json()['access']}"},
        json={"key": "REL", "name": "Reliability"},
    )
    assert created.status_code == 201, created.text
    sent = "SELECT sent_at IS NOT NULL FROM events_outboxevent WHERE tenant_id = %s AND event_type = 'ProjectCreated'"
    deadline = time.monotonic() + 30
    with psycopg.connect(f"{POSTGRES_URL}/{DB_PREFIX}projects", autocommit=True) as projects:
        while (row := projects.execute(sent, [tenant["id"]]).fetchone()) != (True,):
            assert time.monotonic() < deadline, f"ProjectCreated of {tenant['slug']} not relayed: {row}"
            time.sleep(0.2)
