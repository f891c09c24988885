"""The import contracts name every service there is, so a new service is held to them from its first commit."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> list[dict]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["tool"]["importlinter"]["contracts"]


def _services() -> set[str]:
    return {path.stem for path in (ROOT / "config" / "settings").glob("*.py")} - {"base", "__init__"}


def test_every_service_is_independent_of_every_other() -> None:
    independence = next(contract for contract in _contracts() if contract["type"] == "independence")
    assert set(independence["modules"]) == {f"apps.{service}" for service in _services()}


def test_the_shared_apps_and_entry_points_may_import_no_service() -> None:
    services = {f"apps.{service}" for service in _services()}
    forbidding = [contract for contract in _contracts() if contract["type"] == "forbidden"]
    for contract in forbidding:
        if "apps" in contract["forbidden_modules"]:  # the gateway: all of apps/ is out of bounds
            continue
        assert services <= set(contract["forbidden_modules"]), contract["name"]


def test_the_entry_points_know_every_service() -> None:
    from config.entrypoint import SERVICES

    assert set(SERVICES) == _services()
