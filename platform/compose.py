#!/usr/bin/env python3
"""Writes docker-compose.yml from platform/processes.toml, so the two never drift.

    python platform/compose.py          # rewrite docker-compose.yml
    python platform/compose.py --check  # exit 1 if docker-compose.yml is stale

Every process of processes.toml becomes a service of one image (platform/Dockerfile) with the
same command; the backing servers are the official images. Needs PyYAML (requirements/dev).
"""

import argparse
import sys

import yaml
from devstack import ROOT, ProcessSpec, processes_load, processes_runnable

COMPOSE_FILE = ROOT / "docker-compose.yml"
IMAGE = "kanban-platform:latest"
PORT_BASE = 8000
DATA_DIR = "/app/.data"
HEADER = """\
# The production-like stack: PostgreSQL, MongoDB, RabbitMQ, Redis, a mail catcher and every platform process.
# GENERATED from platform/processes.toml by `python platform/compose.py`: edit those, not this.
#
#   export DJANGO_SECRET_KEY=... TENANT_DB_PASSWORD_SECRET=... INTERNAL_API_TOKEN=... SHARE_GRANT_SECRET=...
#   export POSTGRES_PASSWORD=...
#   docker compose up --build        # then http://localhost:8000; mail sent: http://localhost:8025
#
# Non-secret settings come from the committed .env.example; secrets from the shell (or an
# uncommitted .env, which Compose reads for ${...} substitution).
"""

SECRETS = {
    "DJANGO_SECRET_KEY": "${DJANGO_SECRET_KEY:?export DJANGO_SECRET_KEY}",
    "TENANT_DB_PASSWORD_SECRET": "${TENANT_DB_PASSWORD_SECRET:?export TENANT_DB_PASSWORD_SECRET}",
    "INTERNAL_API_TOKEN": "${INTERNAL_API_TOKEN:?export INTERNAL_API_TOKEN}",
    "SHARE_GRANT_SECRET": "${SHARE_GRANT_SECRET:?export SHARE_GRANT_SECRET}",
    "POSTGRES_URL": "postgres://postgres:${POSTGRES_PASSWORD:?export POSTGRES_PASSWORD}@postgres:5432",
}
BACKING_HEALTHY = {name: {"condition": "service_healthy"} for name in ("postgres", "redis", "rabbitmq", "mongo")}
# Where mail goes in Compose: a mail catcher (SMTP on 1025, its web UI on MAILPIT_UI_PORT). It stands in
# for the launcher's dev_only [process.mail]; production points EMAIL_HOST/EMAIL_PORT at a real relay.
MAILPIT_IMAGE = "axllent/mailpit:v1.21"
MAILPIT_UI_PORT = 8025
MAIL_ENV = {"EMAIL_HOST": "mail", "EMAIL_PORT": "1025"}


def healthcheck(test: list[str]) -> dict:
    return {"test": test, "interval": "10s", "timeout": "5s", "retries": 5, "start_period": "20s"}


def backing_services() -> dict:
    return {
        "postgres": {
            "image": "postgres:15",
            "environment": {"POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:?export POSTGRES_PASSWORD}"},
            "volumes": ["postgres-data:/var/lib/postgresql/data"],
            "healthcheck": healthcheck(["CMD", "pg_isready", "-U", "postgres"]),
            "restart": "unless-stopped",
        },
        "mongo": {
            "image": "mongo:7",
            "volumes": ["mongo-data:/data/db"],
            "healthcheck": healthcheck(["CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"]),
            "restart": "unless-stopped",
        },
        "rabbitmq": {
            "image": "rabbitmq:3-management",
            "volumes": ["rabbitmq-data:/var/lib/rabbitmq"],
            "healthcheck": healthcheck(["CMD", "rabbitmq-diagnostics", "-q", "ping"]),
            "restart": "unless-stopped",
        },
        "redis": {
            "image": "redis:7",
            "volumes": ["redis-data:/data"],
            "healthcheck": healthcheck(["CMD", "redis-cli", "ping"]),
            "restart": "unless-stopped",
        },
        "mail": {
            "image": MAILPIT_IMAGE,
            "ports": [f"{MAILPIT_UI_PORT}:{MAILPIT_UI_PORT}"],
            "environment": {"MP_SMTP_BIND_ADDR": "0.0.0.0:1025", "MP_UI_BIND_ADDR": f"0.0.0.0:{MAILPIT_UI_PORT}"},
            "healthcheck": healthcheck(["CMD", "/mailpit", "readyz"]),
            "restart": "unless-stopped",
        },
    }


def app_base(settings: str | None) -> dict:
    environment = {**SECRETS, **MAIL_ENV}
    if settings:
        environment = {"DJANGO_SETTINGS_MODULE": f"config.settings.{settings}", **environment}
    return {
        "image": IMAGE,
        "build": {"context": ".", "dockerfile": "platform/Dockerfile"},
        "env_file": [".env.example"],
        "environment": environment,
    }


def process_service(spec: ProcessSpec) -> dict:
    service = app_base(spec.settings)
    service["environment"].update(dict(spec.env))
    service["command"] = spec.argv(host="0.0.0.0", port_base=PORT_BASE, data_dir=DATA_DIR)  # noqa: S104
    if spec.port is not None:
        port = PORT_BASE + spec.port
        path = "/healthz" if spec.name == "gateway" else "/readyz"
        service["healthcheck"] = healthcheck(
            ["CMD", "python", "platform/healthcheck.py", "http", f"http://127.0.0.1:{port}{path}"]
        )
    else:
        # Workers, relays and consumers serve no HTTP: healthy while their servers answer.
        service["healthcheck"] = healthcheck(
            ["CMD", "python", "platform/healthcheck.py", "tcp", "postgres:5432", "rabbitmq:5672", "redis:6379"]
        )
    depends_on = {
        **BACKING_HEALTHY,
        "mail": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    if spec.name == "gateway":
        depends_on.update({name: {"condition": "service_healthy"} for name in SERVICE_NAMES})
        service["ports"] = [f"{PORT_BASE}:{PORT_BASE}"]
    service["depends_on"] = depends_on
    if spec.name.startswith("beat-"):  # each keeps its schedule file (last runs) in the one volume
        service["volumes"] = ["beat-data:/app/.data"]
    service["restart"] = "unless-stopped"
    return service


SERVICE_NAMES = ("identity", "tenancy", "projects", "projects-ws", "shortener", "analytics")


def compose_document() -> dict:
    services = backing_services()
    migrate = app_base(None)
    migrate["command"] = ["python", "platform/devstack.py", "migrate", "--no-static"]
    migrate["depends_on"] = dict(BACKING_HEALTHY)
    migrate["restart"] = "no"
    services["migrate"] = migrate
    runnable, _ = processes_runnable(processes_load())  # a process whose code is not written would crash-loop
    for spec in runnable:
        if not spec.dev_only:  # the mail catcher is an image here (backing_services)
            services[spec.name] = process_service(spec)
    volumes = {name: {} for name in ("postgres-data", "mongo-data", "rabbitmq-data", "redis-data", "beat-data")}
    return {"services": services, "volumes": volumes}


class _Dumper(yaml.SafeDumper):
    """Block style, except one-line lists of scalars (commands); no anchors."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(isinstance(item, str | int | float) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def compose_text() -> str:
    body = yaml.dump(compose_document(), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=200)
    return HEADER + body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docker-compose.yml is stale")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # which processes can run is read from the settings modules, as devstack does
    text = compose_text()
    if args.check:
        if COMPOSE_FILE.read_text() != text:
            print("docker-compose.yml is stale: run `python platform/compose.py`", file=sys.stderr)
            return 1
        return 0
    COMPOSE_FILE.write_text(text)
    print(f"wrote {COMPOSE_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
