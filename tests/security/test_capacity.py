"""PostgreSQL connection exhaustion (issue 8, item 4), replayed through the gateway.

Before: 16 to 50 concurrent board reads made the projects service hold 60+ connections and
answer 500 "sorry, too many clients already", which broke every service on that server. Now
every process has bounded pools (platform/dbbudget.py sums them from processes.toml): 200
concurrent requests on each service's busiest read get no 5xx, and PostgreSQL never holds more
connections for this stack than the budget, which leaves room below max_connections.

The counts are asserted, not the timings (those are in bench/capacity.py and docs/benchmarks.md).
"""

import asyncio
import importlib.util
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import ConnectionSampler
from tests.security.conftest import DB_PREFIX, PORT_BASE, limits_reset, tenant_host

ROOT = Path(__file__).resolve().parents[2]
CONCURRENT = 200
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432"


def _dbbudget():
    spec = importlib.util.spec_from_file_location("platform_script_dbbudget", ROOT / "platform" / "dbbudget.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def _burst(gateway: str, path: str, headers: dict[str, str]) -> Counter:
    limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=gateway, timeout=90, limits=limits) as client:

        async def one() -> int:
            try:
                return (await client.get(path, headers=headers)).status_code
            except httpx.HTTPError as error:
                return f"{type(error).__name__}"  # type: ignore[return-value]

        return Counter(await asyncio.gather(*(one() for _ in range(CONCURRENT))))


@pytest.fixture(scope="module")
def owner_token(gateway: str) -> str:
    with httpx.Client(base_url=gateway, timeout=15) as client:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            answer = client.post(
                "/api/auth/token",
                headers={"Host": tenant_host("demo")},
                json={"email": "owner@demo.test", "password": "demo-pass-123"},
            )
            if answer.status_code == 200:
                return answer.json()["access"]
            assert answer.status_code == 429, answer.text
            time.sleep(float(answer.headers.get("Retry-After", "2")))
    pytest.fail("the demo owner could not sign in within 90 s")


@pytest.fixture(scope="module")
def busiest_reads(gateway: str, owner_token: str) -> Iterator[list[tuple[str, str, dict[str, str]]]]:
    tenant = {"Host": tenant_host("demo"), "Authorization": f"Bearer {owner_token}"}
    apex = {"Host": f"localhost:{PORT_BASE}"}
    with httpx.Client(base_url=gateway, timeout=15) as client:
        projects = client.get("/api/projects", headers=tenant).json()
    board = next(p for p in projects if p["key"] == "DEMO")["boards"][0]["id"]
    yield [
        ("projects", f"/api/boards/{board}", tenant),
        ("identity", "/api/users", tenant),
        ("identity", "/.well-known/jwks.json", apex),
        ("tenancy", "/api/tenants/demo", apex),
    ]


@pytest.mark.parametrize(("service", "offset"), [("shortener", 4), ("analytics", 5)])
def test_services_without_reads_yet_answer_200_concurrent_readiness_checks(
    gateway: str, service: str, offset: int
) -> None:
    """shortener and analytics have no reads of their own yet, and the gateway routes no path to a
    service's /readyz (its own /healthz asks them all, bounded by its health timeout): the readiness
    check, which queries PostgreSQL (shortener) or MongoDB (analytics), straight at the service."""
    with ConnectionSampler(DB_PREFIX) as sampler:
        statuses = asyncio.run(_burst(f"http://127.0.0.1:{PORT_BASE + offset}", "/readyz", {}))
    budget = _dbbudget().budget_total(_dbbudget().budget_rows())

    print(f"\n{service} /readyz: {dict(statuses)}, peak {sampler.peak} connections")
    assert statuses == {200: CONCURRENT}, f"{service}: {dict(statuses)}"
    assert sampler.peak <= budget


def test_the_budget_leaves_room_below_max_connections() -> None:
    dbbudget = _dbbudget()
    rows = dbbudget.budget_rows()
    budget = dbbudget.budget_total(rows)
    limit = dbbudget.max_connections(POSTGRES_URL)

    print(f"\nconnection budget {budget} of max_connections {limit}\n{dbbudget.budget_table(rows)}")
    assert budget <= limit - dbbudget.MARGIN


def test_200_concurrent_reads_per_service_get_no_5xx_within_the_connection_budget(
    gateway: str, busiest_reads: list
) -> None:
    budget = _dbbudget().budget_total(_dbbudget().budget_rows())
    results = {}
    for service, path, headers in busiest_reads:
        limits_reset()  # the burst must reach the services, not the gateway's per-IP 429
        with ConnectionSampler(DB_PREFIX) as sampler:
            statuses = asyncio.run(_burst(gateway, path, headers))
        results[f"{service} {path}"] = (dict(statuses), sampler.peak, sampler.samples)
    for what, (statuses, peak, _) in results.items():
        print(f"\n{what}: {statuses}, peak {peak} connections")

    for what, (statuses, peak, samples) in results.items():
        assert statuses == {200: CONCURRENT}, f"{what}: {statuses}"
        assert samples > 0
        assert peak <= budget, f"{what}: PostgreSQL held {peak} connections for the stack, budget {budget}"
