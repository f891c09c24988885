"""The stack an outsider attacks: booted by the dev launcher, reached through its gateway only.

Each attack in this suite is replayed against the running platform, as docs/security.md lists
them. SECURITY_PORT_BASE, SECURITY_DB_PREFIX and SECURITY_REDIS_DB keep a run apart from
`make up` and from other suites (the launcher also uses the Redis DB after it, for Celery).
"""

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis

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


# Where the stack counts requests and failed sign-ins: the gateway's limits and identity's throttle.
_LIMIT_KEYS = (f"{DB_PREFIX}gw:rl:*", "identity:login-failures:*")


def limits_reset() -> None:
    server = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    client = redis.Redis(host=server.hostname or "127.0.0.1", port=server.port or 6379, db=REDIS_DB)
    try:
        for pattern in _LIMIT_KEYS:
            for key in client.scan_iter(pattern, count=1000):
                client.delete(key)
    finally:
        client.close()


@pytest.fixture(autouse=True, scope="module")
def limits_fresh_per_module(stack: Stack) -> None:
    """Before a module's own fixtures sign in (autouse fixtures of a scope come first)."""
    limits_reset()


@pytest.fixture(autouse=True)
def limits_fresh(stack: Stack) -> None:
    """Each attack starts from fresh rate limits: every request here comes from 127.0.0.1, so one
    replay that spends a budget (as the throttling replays must) would otherwise decide the next."""
    limits_reset()


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
