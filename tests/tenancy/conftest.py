"""Tenancy tests. Signup calls the real identity service: a gunicorn started here on a free
port, with identity's settings and its own throwaway database."""

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings

from tests.helpers import free_port, server_process

ROOT = Path(__file__).resolve().parents[2]


def _identity_database() -> str:
    return f"test_identity_for_tenancy{settings.TEST_DB_SUFFIX}"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def identity_url() -> Iterator[str]:
    database = _identity_database()
    with psycopg.connect(f"{settings.POSTGRES_URL}/postgres", autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        server.execute(f'CREATE DATABASE "{database}"')
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.identity",
        "DATABASE_URL": f"{settings.POSTGRES_URL}/{database}",
        "INTERNAL_API_TOKEN": settings.INTERNAL_API_TOKEN,
        "PASSWORD_HASHER_FAST_FOR_TESTS": "1",
    }
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gunicorn = [str(ROOT / ".venv" / "bin" / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"]
    try:
        with server_process(gunicorn, ready=lambda: _answers(f"{url}/healthz"), cwd=ROOT, env=env):
            yield url
    finally:
        with psycopg.connect(f"{settings.POSTGRES_URL}/postgres", autocommit=True) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture
def identity(settings: pytest.FixtureRequest, identity_url: str) -> str:
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "identity": identity_url}
    return identity_url


@pytest.fixture
def identity_user(identity: str) -> Callable[[str], dict | None]:
    """What identity stored for an address (its own database, read only): full_name, verified or not."""

    def read(email: str) -> dict | None:
        with psycopg.connect(f"{settings.POSTGRES_URL}/{_identity_database()}") as connection:
            row = connection.execute(
                "SELECT full_name, email_verified_at FROM identity_user WHERE email = %s", [email.lower()]
            ).fetchone()
        return None if row is None else {"full_name": row[0], "email_verified_at": row[1]}

    return read


@pytest.fixture
def identity_organization(identity: str) -> Callable[[str], dict | None]:
    """The organization identity keeps for a tenant slug (its own database, read only)."""

    def read(slug: str) -> dict | None:
        with psycopg.connect(f"{settings.POSTGRES_URL}/{_identity_database()}") as connection:
            row = connection.execute("SELECT id, name FROM identity_organization WHERE slug = %s", [slug]).fetchone()
        return None if row is None else {"id": str(row[0]), "name": row[1]}

    return read
