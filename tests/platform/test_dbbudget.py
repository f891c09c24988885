"""The PostgreSQL connection budget (platform/dbbudget.py): what every process of processes.toml
can open at once stays below the server's max_connections, with room for admins and tests."""

import os
import tomllib

import pytest

from tests.platform.conftest import ROOT, script_load

POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")


@pytest.fixture(scope="module")
def dbbudget():
    return script_load("dbbudget")


def test_the_budget_stays_below_max_connections_with_a_margin(dbbudget) -> None:
    rows = dbbudget.budget_rows()
    total = dbbudget.budget_total(rows)
    limit = dbbudget.max_connections(POSTGRES_URL)

    print(f"\nconnection budget {total} of max_connections {limit}\n{dbbudget.budget_table(rows)}")
    assert total <= limit - dbbudget.MARGIN, dbbudget.budget_table(rows)


def test_every_process_that_reaches_postgresql_sizes_its_pool_to_its_threads(dbbudget) -> None:
    document = tomllib.loads((ROOT / "platform" / "processes.toml").read_text())
    rows = {row.name: row for row in dbbudget.budget_rows()}

    for name, entry in document["process"].items():
        command = entry["command"]
        if entry.get("settings") in (None, "analytics"):
            assert name not in rows
            continue
        assert name in rows, f"{name} is missing from the budget"
        threads = int(command[command.index("--threads") + 1]) if "--threads" in command else 1
        assert rows[name].pool >= threads, f"{name}: {threads} threads would queue for {rows[name].pool} connections"


def test_a_process_that_states_no_pool_is_refused(dbbudget, tmp_path) -> None:
    path = tmp_path / "processes.toml"
    path.write_text('[process.web]\ncommand = ["gunicorn", "app"]\nsettings = "identity"\n')

    with pytest.raises(ValueError, match="DB_POOL_MAX_SIZE"):
        dbbudget.budget_rows(path)


def test_workers_multiply_what_one_process_may_open(dbbudget, tmp_path) -> None:
    path = tmp_path / "processes.toml"
    path.write_text(
        '[process.web]\ncommand = ["gunicorn", "app", "--workers", "3", "--threads", "2"]\n'
        'settings = "projects"\nenv = { DB_POOL_MAX_SIZE = "2", TENANT_DB_POOLS_MAX = "2" }\n'
        '[process.relay]\ncommand = ["python", "manage.py", "relay_outbox"]\nsettings = "shortener"\n'
        'env = { DB_POOL_MAX_SIZE = "1" }\ndb_direct = 2\n'
    )

    rows = {row.name: row.total for row in dbbudget.budget_rows(path)}

    assert rows == {"web": 3 * (2 + 2 * 2), "relay": 1 + 2}
