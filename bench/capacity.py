"""Capacity through the front door: the board JSON at 64 connections, and 200 connections on each
service's busiest read while PostgreSQL's connections are counted against the budget.

    .venv/bin/python bench/capacity.py [--port-base 18700] [--db-prefix capbench_] [--redis-db 13]
                                       [--cards 50] [--connections 64] [--duration 10]

Boots the dev launcher's stack (tests/e2e/stack.py: its own ports, databases and Redis DBs,
the demo seeded; the gateway's per-IP rate limit off, since every request comes from this one
machine), signs in as the demo owner, seeds a board of --cards cards in the demo tenant through
the gateway, then runs wrk (apt package `wrk`) against:

1. the board JSON through the gateway, and directly against the projects service (the same
   request as the gateway sends it: X-Tenant-ID and the token), at --connections connections;
2. 200 connections for --duration seconds on each service's busiest read through the gateway,
   sampling pg_stat_activity for the stack's databases every 50 ms (nothing answered, or a
   connection timed out, fails as surely as a 5xx).

Prints a table (target, measured, pass/fail). Needs PostgreSQL, Redis and RabbitMQ as `make up` does.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a script run from bench/, not an installed package

import httpx  # noqa: E402

from tests.e2e.stack import ConnectionSampler, stack_run  # noqa: E402

POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DEMO = {"email": "owner@demo.test", "password": "demo-pass-123"}

# Counts every status across wrk's threads, and prints the latency percentiles in microseconds.
WRK_SCRIPT = """
counts = {}  -- a global: done() reads each thread's copy
local threads = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("status %d %d\\n", status, n)) end
  io.write(string.format("latency %d %d %d %d\\n", latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


@dataclass
class WrkResult:
    requests_per_second: float
    statuses: dict[int, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.socket_errors + sum(n for status, n in self.statuses.items() if status >= 400)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def wrk(url: str, *, headers: dict[str, str], connections: int, duration: int, script: Path) -> WrkResult:
    argv = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
    ]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    output = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    statuses = {int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", output, re.MULTILINE)}
    p50, p99, most, socket_errors = (
        int(v) for v in re.search(r"^latency (\d+) (\d+) (\d+) (\d+)$", output, re.MULTILINE).groups()
    )
    return WrkResult(rate, statuses, p50 / 1000, p99 / 1000, most / 1000, socket_errors)


def sign_in(client: httpx.Client, host: str) -> str:
    for _ in range(30):
        response = client.post("/api/auth/token", headers={"Host": host}, json=DEMO)
        if response.status_code == 200:
            return response.json()["access"]
        time.sleep(float(response.headers.get("Retry-After", "2")))
    raise SystemExit(f"cannot sign in as the demo owner: {response.status_code} {response.text[:200]}")


def board_seed(client: httpx.Client, headers: dict[str, str], cards: int) -> int:
    project = client.post("/api/projects", headers=headers, json={"key": "CAP", "name": "Capacity"})
    project.raise_for_status()
    board_id = project.json()["boards"][0]["id"]
    columns = [column["id"] for column in client.get(f"/api/boards/{board_id}", headers=headers).json()["columns"]]
    for number in range(cards):
        created = client.post(
            "/api/tasks",
            headers=headers,
            json={
                "board": board_id,
                "column": columns[number % len(columns)],
                "title": f"Card number {number} with a realistic title",
                "labels": ["bug"] if number % 5 == 0 else [],
            },
        )
        created.raise_for_status()
        if number % 4 == 0:
            client.post(f"/api/tasks/{created.json()['id']}/subtasks", headers=headers, json={"title": "step"})
    return board_id


def budget() -> int:
    import importlib.util

    spec = importlib.util.spec_from_file_location("dbbudget", ROOT / "platform" / "dbbudget.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["dbbudget"] = module
    spec.loader.exec_module(module)
    return module.budget_total(module.budget_rows())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port-base", type=int, default=18700)
    parser.add_argument("--db-prefix", default="capbench_")
    parser.add_argument("--redis-db", type=int, default=13, help="the stack's Redis DB (and the next, for Celery)")
    parser.add_argument("--cards", type=int, default=50)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")

    gateway = f"http://127.0.0.1:{args.port_base}"
    tenant_host = f"demo.localhost:{args.port_base}"
    rows: list[tuple[str, str, str, bool]] = []
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "count.lua"
        script.write_text(WRK_SCRIPT)
        env = {"GATEWAY_RATE_LIMIT_ENABLED": "0"}
        with stack_run(
            port_base=args.port_base, db_prefix=args.db_prefix, redis_db=args.redis_db,
            data_dir=Path(scratch) / "data", seed=True, env=env,
        ) as stack, httpx.Client(base_url=gateway, timeout=30) as client:  # fmt: skip
            token = sign_in(client, tenant_host)
            tenant_id = client.get("/api/tenants/demo", headers={"Host": f"localhost:{args.port_base}"}).json()["id"]
            through_gateway = {"Host": tenant_host, "Authorization": f"Bearer {token}"}
            board_id = board_seed(client, through_gateway, args.cards)
            board_path = f"/api/boards/{board_id}"
            size = len(client.get(board_path, headers=through_gateway).content)
            print(f"stack ready on {gateway}; board {board_id}: {args.cards} cards, {size} bytes of JSON")
            uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
            print(f"machine: {os.cpu_count()} cores; uptime: {uptime}")

            direct = {"X-Tenant-ID": tenant_id, "Authorization": f"Bearer {token}"}
            projects_url = f"http://127.0.0.1:{stack.port_base + 3}{board_path}"
            for label, url, headers in (
                ("through the gateway", f"{gateway}{board_path}", through_gateway),
                ("projects directly", projects_url, direct),
            ):
                wrk(url, headers=headers, connections=args.connections, duration=2, script=script)  # warm-up
                result = wrk(url, headers=headers, connections=args.connections, duration=args.duration, script=script)
                what = f"board JSON ({args.cards} cards), {label}, {args.connections} connections"
                rows.append((f"{what}: errors", "0", str(result.errors), result.errors == 0))
                rows.append(
                    (
                        f"{what}: p99",
                        "<= 500 ms",
                        f"{result.p99_ms:.0f} ms (p50 {result.p50_ms:.0f})",
                        result.p99_ms <= 500,
                    )
                )
                rows.append(
                    (
                        f"{what}: requests/s",
                        ">= 300",
                        f"{result.requests_per_second:.0f}",
                        result.requests_per_second >= 300,
                    )
                )

            limit = budget()
            apex = {"Host": f"localhost:{args.port_base}"}
            reads = (
                ("projects: board JSON", board_path, through_gateway),
                ("identity: /api/users", "/api/users", through_gateway),
                ("identity: /.well-known/jwks.json", "/.well-known/jwks.json", apex),
                ("tenancy: /api/tenants/demo", "/api/tenants/demo", apex),
                ("every service's /readyz (gateway /healthz)", "/healthz", apex),
            )
            for label, path, headers in reads:
                with ConnectionSampler(args.db_prefix, interval=0.05, postgres_url=POSTGRES_URL) as sampler:
                    result = wrk(
                        f"{gateway}{path}", headers=headers, connections=200, duration=args.duration, script=script
                    )
                statuses = ", ".join(f"{n} x {status}" for status, n in sorted(result.statuses.items()))
                statuses += f", {result.socket_errors} socket errors/timeouts" if result.socket_errors else ""
                # Nothing answered, or a connection timed out, is a failure too, not a pass with no 5xx.
                answered = sum(result.statuses.values()) > 0 and result.socket_errors == 0
                rows.append(
                    (
                        f"{label}, 200 connections: 5xx",
                        "0",
                        f"{result.server_errors} ({statuses or 'nothing answered'})",
                        result.server_errors == 0 and answered,
                    )
                )
                rows.append(
                    (
                        f"{label}: peak PostgreSQL connections",
                        f"<= budget {limit}",
                        str(sampler.peak),
                        sampler.peak <= limit,
                    )
                )

    width = max(len(row[0]) for row in rows)
    print(f"\n| {'what':<{width}} | target | measured | |")
    print(f"|{'-' * (width + 2)}|---|---|---|")
    for what, target, measured, ok in rows:
        print(f"| {what:<{width}} | {target} | {measured} | {'pass' if ok else 'FAIL'} |")
    return 0 if all(row[3] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
