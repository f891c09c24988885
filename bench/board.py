"""Board benchmarks: a board of 2,000 cards, read as JSON and as the server-rendered page,
the queries per request, the rows a move writes, and live fan-out to 500 viewers.

    .venv/bin/python bench/board.py [--cards 2000] [--viewers 500] [--rounds 30]

Uses its own database (bench_projects, recreated each run) on the configured PostgreSQL
server, its own Redis database (14; BENCH_REDIS_DB), and runs the projects ASGI app under uvicorn in a
child process for the fan-out part. Tokens are real RS256 tokens; the child process
fetches the public key from a JWKS endpoint this script serves.
"""

import argparse
import asyncio
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a script run from bench/, not an installed package

from results import Result, db_prefix, redis_db, results_report, target_at_most  # noqa: E402

DB_NAME = f"{db_prefix()}projects"
REDIS_URL = f"redis://127.0.0.1:6379/{redis_db(14)}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.projects")
os.environ["DATABASE_URL"] = f"{os.environ.get('POSTGRES_URL', 'postgres://postgres@127.0.0.1:5432')}/{DB_NAME}"
os.environ["REDIS_URL"] = REDIS_URL
os.environ["DJANGO_DEBUG"] = "0"
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-secret-key")
os.environ.setdefault("TENANT_DB_PASSWORD_SECRET", "bench-tenant-secret")
os.environ.setdefault("INTERNAL_API_TOKEN", "bench-internal-token")  # required with DEBUG off
os.environ.setdefault("SHARE_GRANT_SECRET", "bench-share-grant-secret")  # likewise


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def recreate_database() -> None:
    import psycopg

    server = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


class Keys:
    def __init__(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from jwt.algorithms import RSAAlgorithm

        self.kid = "bench-key"
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        self.jwks = json.dumps({"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}).encode()

    def token(self, *, user_id: str, tenant_id: str, permissions: list[str]) -> str:
        import jwt

        now = int(time.time())
        claims = {
            "sub": user_id,
            "tenantId": tenant_id,
            "roles": ["manager"],
            "permissions": permissions,
            "iat": now,
            "exp": now + 3600,
            "iss": "kanban-identity",
            "aud": "kanban-platform",
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.pem, algorithm="RS256", headers={"kid": self.kid})

    def serve_jwks(self) -> str:
        body = self.jwks

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = HTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_port}"


PERMISSIONS = ["create_project", "create_task", "edit_task", "assign_task", "move_task", "comment", "edit_columns"]


def seed(cards: int, tenant_uuid: str) -> dict:
    from django.core.management import call_command
    from django.db import transaction
    from django_tenants.utils import schema_context

    from apps.projects.models import ProjectMember, Subtask, Task
    from apps.projects.permissions import CallerClaims
    from apps.projects.ranks import spread
    from apps.projects.services import projects as project_services
    from apps.projects.services.people import person_upsert
    from apps.projects.tenants.models import Tenant

    call_command("migrate_schemas", shared=True, verbosity=0)
    tenant = Tenant(schema_name="bench", tenant_id=tenant_uuid, slug="bench", name="Bench", status="active")
    tenant.save()
    tenant.create_schema(check_if_exists=True, verbosity=0)
    caller = CallerClaims(
        user_id="bench-user", tenant_id=tenant_uuid, roles=("manager",), permissions=frozenset(PERMISSIONS)
    )
    with schema_context("bench"):
        project = project_services.project_create(caller=caller, key="BENCH", name="Bench")
        board = project.boards.get()
        # A team of twelve with names from the people directory, as identity's events leave it:
        # the board resolves every assignee's name, initials and colour.
        team = ["bench-user", *(f"bench-member-{n}" for n in range(1, 12))]
        with transaction.atomic():  # person_upsert locks the row it writes
            for n, user_id in enumerate(team):
                person_upsert(user_id=user_id, name=f"Team Member{n:02d} Surname", email=f"{user_id}@bench.test")
        ProjectMember.objects.bulk_create(ProjectMember(project=project, user_id=user_id) for user_id in team[1:])
        columns = list(board.columns.order_by("position"))
        # Cards are inserted in bulk (the services are measured below, not the seeding).
        per_column = cards // len(columns)
        tasks = []
        number = 0
        for column in columns:
            for rank in spread(per_column):
                number += 1
                tasks.append(
                    Task(
                        project=project,
                        board=board,
                        column=column,
                        number=number,
                        key=f"BENCH-{number}",
                        title=f"Card number {number} with a realistic title",
                        rank=rank,
                        reporter_id="bench-user",
                        assignees=[team[number % len(team)]] if number % 3 else [],
                        labels=["bug"] if number % 5 == 0 else [],
                    )
                )
        Task.objects.bulk_create(tasks, batch_size=1000)
        project.task_counter = number
        project.save(update_fields=["task_counter"])
        Subtask.objects.bulk_create(Subtask(task=task, title="step") for task in tasks[::4])
        ids = list(Task.objects.filter(board=board).order_by("column_id", "rank").values_list("id", flat=True))
    return {"board": board.id, "columns": [column.id for column in columns], "tasks": ids, "caller": caller}


def time_requests(client: object, path: str, headers: dict, rounds: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings = []
    queries = 0
    for index in range(rounds + 3):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path, **headers)
            elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.content[:300]
        if index >= 3:  # warm-up
            timings.append(elapsed)
            queries = len(captured)
    return timings, queries


def measure_reads(data: dict, keys: Keys, tenant_uuid: str, rounds: int) -> dict:
    from django.test import Client

    token = keys.token(user_id="bench-user", tenant_id=tenant_uuid, permissions=PERMISSIONS)
    client = Client()
    api_headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_X_TENANT_ID": tenant_uuid}
    client.cookies["access_token"] = token
    json_times, json_queries = time_requests(client, f"/api/boards/{data['board']}", api_headers, rounds)
    page_times, page_queries = time_requests(
        client, f"/boards/{data['board']}/", {"HTTP_X_TENANT_ID": tenant_uuid}, rounds
    )
    return {
        "json_p50": statistics.median(json_times),
        "json_p95": percentile(json_times, 0.95),
        "json_queries": json_queries,
        "page_p50": statistics.median(page_times),
        "page_p95": percentile(page_times, 0.95),
        "page_queries": page_queries,
    }


def measure_move_writes(data: dict) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context

    from apps.projects.services import tasks as task_services

    with schema_context("bench"), CaptureQueriesContext(connection) as captured:
        task_services.task_move(
            caller=data["caller"], task_id=data["tasks"][10], column_id=data["columns"][1], index=300
        )
    return sum(query["sql"].split(None, 1)[0] in ("INSERT", "UPDATE", "DELETE") for query in captured)


async def measure_fanout(data: dict, keys: Keys, tenant_uuid: str, jwks_url: str, viewers: int, moves: int) -> dict:
    import httpx
    import websockets

    port = free_port()
    env = {
        **os.environ,
        "IDENTITY_URL": jwks_url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finally) the server output, shown if it fails
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--lifespan",
            "off",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"http://{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        token = keys.token(user_id="bench-user", tenant_id=tenant_uuid, permissions=PERMISSIONS)
        arrivals: dict[int, list[float]] = {}
        sockets = []
        listeners = []
        heard = [time.perf_counter()]  # when any viewer last received anything

        async def listen(ws: object) -> None:
            try:
                async for raw in ws:
                    message = json.loads(raw)
                    if message["type"] == "ping":  # the server's heartbeat, answered as the board's page does
                        await ws.send("pong")
                        continue
                    heard[0] = time.perf_counter()
                    if message["type"] == "task.moved":
                        arrivals.setdefault(message["seq"], []).append(time.perf_counter())
            except websockets.ConnectionClosed:
                return  # a viewer the server dropped: its missing deliveries show in the count

        async def viewer() -> object:
            ws = await websockets.connect(
                f"ws://{base}/ws/boards/{data['board']}/",
                subprotocols=["bearer", token],
                additional_headers={"X-Tenant-ID": tenant_uuid},
                max_queue=None,
                open_timeout=60,
            )
            # Live from its "hello" on: the server has joined it to the board's group by then.
            while json.loads(await asyncio.wait_for(ws.recv(), timeout=60))["type"] != "hello":
                pass
            # Listening (and answering the heartbeat) from then on, while the others connect.
            listeners.append(asyncio.create_task(listen(ws)))
            return ws

        for start in range(0, viewers, 25):  # a few at a time: each one's handshake checks its token
            sockets += await asyncio.gather(*(viewer() for _ in range(min(25, viewers - start))))
        print(f"  {len(sockets)} viewers connected", flush=True)

        # Each join told every viewer already there (presence): moves are timed once that has died down.
        settle_until = time.perf_counter() + 60
        while time.perf_counter() - heard[0] < 0.5 and time.perf_counter() < settle_until:
            await asyncio.sleep(0.05)
        headers = {"Authorization": f"Bearer {token}", "X-Tenant-ID": tenant_uuid}
        latencies: list[float] = []  # from the API's response reaching the client (negative: before it)
        from_request: list[float] = []  # from the move request being sent
        async with httpx.AsyncClient(base_url=f"http://{base}", timeout=30) as client:
            for move in range(moves):
                task_id = data["tasks"][move]
                sent = time.perf_counter()
                response = await client.post(
                    f"/api/tasks/{task_id}/move", json={"column": data["columns"][move % 3]}, headers=headers
                )
                responded = time.perf_counter()
                assert response.status_code == 200, response.text
                deadline = time.perf_counter() + 5
                while time.perf_counter() < deadline:
                    newest = max(arrivals) if arrivals else None
                    if newest is not None and len(arrivals[newest]) >= viewers:
                        break
                    await asyncio.sleep(0.002)
                if not arrivals:  # nothing within 5 s: every delivery of this move is missing from the count
                    continue
                newest = max(arrivals)
                delivered = arrivals.pop(newest)
                latencies.extend((arrived - responded) * 1000 for arrived in delivered)
                from_request.extend((arrived - sent) * 1000 for arrived in delivered)
                arrivals.clear()
                await asyncio.sleep(0.05)
        dropped = [ws.close_code for ws in sockets if ws.close_code is not None]  # the server closed these
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        for start in range(0, len(sockets), 50):  # the server leaves each group: not all at once
            await asyncio.gather(*(ws.close() for ws in sockets[start : start + 50]), return_exceptions=True)
        # A delivery that never came within 5 s counts as the slowest there is, not as absent.
        missing = viewers * moves - len(latencies)
        latencies += [math.inf] * missing
        from_request += [math.inf] * missing
        return {
            "viewers": viewers,
            "moves": moves,
            "deliveries": len(latencies) - missing,
            "missing": missing,
            "dropped": dropped,
            "p50": statistics.median(latencies),
            "p99": percentile(latencies, 0.99),
            "max": max(latencies),
            "request_p50": statistics.median(from_request),
            "request_p99": percentile(from_request, 0.99),
        }
    except BaseException:
        log.seek(0)
        sys.stderr.write(log.read().decode(errors="replace")[-4000:])
        raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # still closing sockets after 30 s: the numbers are taken
            print("  the server took over 30 s to stop; killed", flush=True)
            server.kill()
            server.wait()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=2000)
    parser.add_argument("--viewers", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args()

    recreate_database()
    import logging
    import warnings

    import django

    warnings.filterwarnings("ignore", "No directory at")  # collectstatic's output is not needed here

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    keys = Keys()
    jwks_url = keys.serve_jwks()
    from django.conf import settings

    settings.SERVICE_URLS["identity"] = jwks_url
    tenant_uuid = str(uuid.uuid4())
    started = time.perf_counter()
    data = seed(args.cards, tenant_uuid)
    print(f"seeded {len(data['tasks'])} cards in {time.perf_counter() - started:.1f}s")
    reads = measure_reads(data, keys, tenant_uuid, args.rounds)
    writes = measure_move_writes(data)
    from django.db import connections

    connections.close_all()
    fanout = asyncio.run(measure_fanout(data, keys, tenant_uuid, jwks_url, args.viewers, args.moves))
    cards = f"{len(data['tasks']):,} cards"
    results_report(
        "board",
        [
            Result(
                f"board JSON p50, {cards} (in-process)",
                reads["json_p50"],
                "ms",
                "<= 80 ms",
                target_at_most(reads["json_p50"], 80),
                detail=f"p95 {reads['json_p95']:.1f} ms, {reads['json_queries']} queries",
            ),
            Result(
                f"board page p50, {cards} (in-process)",
                reads["page_p50"],
                "ms",
                "<= 150 ms",
                target_at_most(reads["page_p50"], 150),
                detail=f"p95 {reads['page_p95']:.1f} ms, {reads['page_queries']} queries",
            ),
            Result(
                f"statements a move writes, {cards}",
                writes,
                "",
                "<= 3",
                writes <= 3,
                detail="task UPDATE, activity INSERT, outbox INSERT",
            ),
            Result(
                f"live fan-out p99 after the API answered, {fanout['viewers']} viewers",
                fanout["p99"],
                "ms",
                "<= 100 ms",
                target_at_most(fanout["p99"], 100),
                detail=(
                    f"{fanout['deliveries']} of {fanout['viewers'] * fanout['moves']} deliveries, "
                    f"{len(fanout['dropped'])} viewers dropped {sorted(set(fanout['dropped']))}, "
                    f"p50 {fanout['p50']:.1f} ms, max {fanout['max']:.1f} ms; "
                    f"from the request p50 {fanout['request_p50']:.1f} / p99 {fanout['request_p99']:.1f} ms"
                ),
            ),
        ],
    )


if __name__ == "__main__":
    main()
