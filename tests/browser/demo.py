"""The seeded demo organization's stack, as most browser modules boot it, and their patience.

Each module still chooses its own ports, databases and Redis DB (modules run one after another,
but a stack's leftovers must never meet the next one's).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect

from tests.e2e.stack import Stack, stack_run

DEMO_EMAIL = "owner@demo.test"
DEMO_PASSWORD = "demo-pass-123"


@contextmanager
def demo_stack(
    tmp_path_factory: pytest.TempPathFactory, *, db_prefix: str, port_base: int, redis_db: int
) -> Iterator[Stack]:
    """A whole stack with the demo seeded, on `port_base`, databases `db_prefix*`, Redis `redis_db`."""
    data_dir = tmp_path_factory.mktemp(f"{db_prefix.rstrip('_')}-data")
    with stack_run(
        port_base=port_base, db_prefix=db_prefix, redis_db=redis_db, data_dir=data_dir, seed=True
    ) as running:
        assert any("demo seeded" in line for line in running.lines), running.log_tail()
        yield running


@contextmanager
def patient_expect(timeout_ms: int) -> Iterator[None]:
    """Assertions wait as long as actions do: two cores run several stacks at once."""
    expect.set_options(timeout=timeout_ms)
    try:
        yield
    finally:
        expect.set_options(timeout=5_000)
