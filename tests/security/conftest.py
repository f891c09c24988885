"""The stack an outsider attacks: booted by the dev launcher, reached through its gateway only.

Each attack in this suite is replayed against the running platform, as docs/security.md lists
them. SECURITY_PORT_BASE, SECURITY_DB_PREFIX and SECURITY_REDIS_DB keep a run apart from
`make up` and from other suites (the launcher also uses the Redis DB after it, for Celery).
"""

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import Stack, stack_run

PORT_BASE = int(os.environ.get("SECURITY_PORT_BASE", "18100"))
DB_PREFIX = os.environ.get("SECURITY_DB_PREFIX", "sec_")
REDIS_DB = int(os.environ.get("SECURITY_REDIS_DB", "2"))
MAIL_PORT_OFFSET = 9  # the launcher's SMTP server: port base + 9 (platform/processes.toml)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("security-data")
    with stack_run(
        port_base=PORT_BASE, db_prefix=DB_PREFIX, redis_db=REDIS_DB, data_dir=data_dir, seed=True
    ) as running:
        yield running


@pytest.fixture(scope="session")
def gateway(stack: Stack) -> str:
    return stack.gateway


@pytest.fixture(scope="session")
def mail_dir(stack: Stack) -> Path:
    """Where the launcher's SMTP server keeps what the platform sent."""
    return stack.data_dir / "mail"


@pytest.fixture
def client(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, timeout=15) as session:
        yield session


def tenant_host(slug: str) -> str:
    """The Host header of a tenant on this stack (the gateway resolves the tenant from it)."""
    return f"{slug}.localhost:{PORT_BASE}"
