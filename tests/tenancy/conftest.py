"""Tenancy tests. Signup calls the real identity service: a gunicorn started here on a free
port, with identity's settings and its own throwaway database."""

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def identity_url() -> Iterator[str]:
    database = f"test_identity_for_tenancy{settings.TEST_DB_SUFFIX}"
    with psycopg.connect(f"{settings.POSTGRES_URL}/postgres", autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        server.execute(f'CREATE DATABASE "{database}"')
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.identity",
        "DATABASE_URL": f"{settings.POSTGRES_URL}/{database}",
        "INTERNAL_API_TOKEN": settings.INTERNAL_API_TOKEN,
    }
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    port = free_port()
    server_process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server_process.poll() is not None:
                raise RuntimeError("the identity service did not start")
            time.sleep(0.2)
        yield url
    finally:
        server_process.terminate()
        server_process.wait(timeout=10)
        with psycopg.connect(f"{settings.POSTGRES_URL}/postgres", autocommit=True) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture
def identity(settings: pytest.FixtureRequest, identity_url: str) -> str:
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "identity": identity_url}
    return identity_url


@pytest.fixture
def events_ready() -> None:
    """Signup writes TenantCreated through apps.events (built in parallel by the events engineer)."""
    pytest.importorskip("apps.events.outbox", reason="apps.events.outbox is not there yet")
