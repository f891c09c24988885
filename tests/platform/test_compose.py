"""docker-compose.yml: valid Compose, the same processes and commands as the dev launcher."""

import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
BACKING = {"postgres", "mongo", "rabbitmq", "redis"}
MAIL = "mail"  # a mail catcher image, standing in for the launcher's dev_only mail process


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_errors(document: dict) -> list[str]:
    # The file declares draft 2019-09 ("...2019-09/schema#"), spelled so jsonschema cannot look it up.
    validator = jsonschema.Draft201909Validator(SCHEMA, format_checker=jsonschema.Draft201909Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]


def app_services(compose: dict) -> dict[str, dict]:
    return {name: service for name, service in compose["services"].items() if name not in BACKING | {MAIL}}


def test_compose_file_follows_the_compose_specification(compose: dict) -> None:
    assert compose_errors(compose) == []


def test_the_schema_refuses_a_broken_file(compose: dict) -> None:
    """The validator really checks: a bad dependency condition and an unknown key are errors."""
    broken = json.loads(json.dumps(compose))
    broken["services"]["gateway"]["depends_on"]["identity"]["condition"] = "when_it_feels_like_it"
    broken["services"]["redis"]["helthcheck"] = {"test": ["CMD", "true"]}
    errors = compose_errors(broken)
    assert any("services/gateway/depends_on" in error for error in errors)
    assert any("helthcheck" in error for error in errors)


def test_every_process_runs_in_compose_with_the_same_command(compose: dict, devstack: ModuleType) -> None:
    services = compose["services"]
    runnable, _ = devstack.processes_runnable(devstack.processes_load())
    for spec in runnable:
        assert spec.name in services, f"{spec.name} of processes.toml has no compose service"
        if spec.dev_only:
            continue
        expected = spec.argv(host="0.0.0.0", port_base=8000, data_dir="/app/.data")  # noqa: S104
        assert services[spec.name]["command"] == expected, spec.name
        environment = services[spec.name].get("environment", {})
        assert environment.get("DJANGO_SETTINGS_MODULE") == spec.settings_module, spec.name


def test_compose_has_no_process_the_launcher_lacks(compose: dict, devstack: ModuleType) -> None:
    launched = {spec.name for spec in devstack.processes_runnable(devstack.processes_load())[0] if not spec.dev_only}
    assert set(app_services(compose)) - launched == {"migrate"}


def test_compose_file_is_generated_from_the_process_list() -> None:
    result = subprocess.run(
        [sys.executable, "platform/compose.py", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_everything_has_a_healthcheck_and_waits_for_what_it_needs(compose: dict) -> None:
    for name, service in compose["services"].items():
        assert service.get("healthcheck", {}).get("test") or name == "migrate", f"{name} has no healthcheck"
    for name, service in app_services(compose).items():
        conditions = {dep: rule["condition"] for dep, rule in service["depends_on"].items()}
        assert {conditions[server] for server in BACKING} == {"service_healthy"}, name
        if name != "migrate":
            assert conditions["migrate"] == "service_completed_successfully", name
    gateway = compose["services"]["gateway"]["depends_on"]
    for service in ("identity", "tenancy", "projects", "shortener", "analytics"):
        assert gateway[service]["condition"] == "service_healthy"


def test_one_image_for_all_processes_built_from_the_platform_dockerfile(compose: dict) -> None:
    images = {service["image"] for service in app_services(compose).values()}
    assert images == {"kanban-platform:latest"}
    for service in app_services(compose).values():
        assert service["build"] == {"context": ".", "dockerfile": "platform/Dockerfile"}
    dockerfile = (ROOT / "platform" / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM python:3.11-slim" in dockerfile
    assert re.search(r"^USER app$", dockerfile, re.MULTILINE), "the image must not run as root"
    assert "requirements/base.txt" in dockerfile


def test_production_settings_debug_off_and_secrets_from_the_environment(compose: dict) -> None:
    env_example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert env_example["DJANGO_DEBUG"] == "0"
    assert "DJANGO_SECRET_KEY" not in env_example, "no secret in a committed file"
    for name, service in app_services(compose).items():
        assert service["env_file"] == [".env.example"], name
        assert service["environment"]["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?"), name


def test_volumes_are_named_and_declared(compose: dict) -> None:
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source in declared, f"{name}: {source} is not a named volume"
    assert {"postgres-data", "mongo-data", "rabbitmq-data", "redis-data"} <= declared


def test_mail_goes_to_a_mail_catcher_service(compose: dict) -> None:
    mail = compose["services"][MAIL]
    assert mail["image"].startswith("axllent/mailpit:")
    assert mail["healthcheck"]["test"]
    for name, service in app_services(compose).items():
        assert service["environment"]["EMAIL_HOST"] == MAIL, name
        assert service["environment"]["EMAIL_PORT"] == "1025", name
        if name != "migrate":
            assert service["depends_on"][MAIL]["condition"] == "service_healthy", name
