"""Gateway benchmarks (issue 8): what the front door costs, side by side with the bare app, and
whether slow clients hurt anyone else.

    .venv/bin/python bench/gateway.py [--duration 6] [--slow-clients 50]

1. Overhead. A bare ASGI app that answers 11 bytes of JSON runs under uvicorn (uvloop,
   httptools) in its own process; the real gateway runs in another, exactly as
   platform/processes.toml starts it (`--http gateway.server:HttpProtocol --no-proxy-headers`),
   with every service URL pointing at the bare app (which also answers the tenant lookup and
   the JWKS). Requests go through the whole admission path: a tenant host (`bench.localhost`),
   a real RS256 token, the per-IP and per-user rate limits and the revoked-jti check on the
   machine's Redis (DB 13 or BENCH_REDIS_DB, limits set high enough never to refuse). `wrk` (apt package `wrk`)
   runs at 1 connection and at 64 connections against both, one after the other.
2. Slow clients. A WSGI app under gunicorn gthread with 4 threads (how identity runs) stands
   behind a second gateway. `--slow-clients` clients (in a process of their own) each trickle
   a sign-in body one byte every 2 s into the gateway while one client measures the p99 of
   ordinary requests through it; the same measurement without slow clients is the baseline,
   in six alternating rounds.

Prints a table (target, measured, pass/fail); docs/benchmarks.md keeps the numbers.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import jwt
import redis
from cryptography.hazmat.primitives.asymmetric import rsa
from results import Result, redis_db, results_report, target_at_least, target_at_most

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
REDIS_URL = f"redis://127.0.0.1:6379/{redis_db(13)}"
TENANT_ID = "5b0c6f0e-7e0e-4c8a-9a4e-2f1b9d1e0b01"
HOST = "bench.localhost"

# The bare app: 11 bytes of JSON on every path, plus the tenant lookup and the JWKS the gateway needs.
BARE_APP = """
import json, os
BODY = b'{"ok":true}'
JWKS = open(os.environ["BENCH_JWKS"], "rb").read()
TENANT = json.dumps({"id": os.environ["BENCH_TENANT_ID"], "slug": "bench", "name": "Bench",
                     "status": "active", "isolation": "schema"}).encode()
async def app(scope, receive, send):
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    path = scope["path"]
    body = BODY
    if path.startswith("/api/tenants/"):
        body = TENANT
    elif path == "/.well-known/jwks.json":
        body = JWKS
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""

# A thread-limited WSGI service, as identity runs (gunicorn gthread, 4 threads): each request
# holds a thread while the server reads its body.
WSGI_APP = """
import json, os
JWKS = open(os.environ["BENCH_JWKS"], "rb").read()
TENANT = json.dumps({"id": os.environ["BENCH_TENANT_ID"], "slug": "bench", "name": "Bench",
                     "status": "active", "isolation": "schema"}).encode()
def app(environ, start_response):
    path = environ["PATH_INFO"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    body = b'{"ok":true}'
    if path.startswith("/api/tenants/"):
        body = TENANT
    elif path == "/.well-known/jwks.json":
        body = JWKS
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}: {process.args}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Processes:
    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, argv: list[str], *, env: dict[str, str], port: int) -> subprocess.Popen:
        process = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self.started.append(process)
        wait_listening(port, process)
        return process

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def gateway_env(base: dict[str, str], upstream: str, prefix: str) -> dict[str, str]:
    env = dict(base)
    for service in ("IDENTITY", "TENANCY", "PROJECTS", "SHORTENER", "ANALYTICS"):
        env[f"{service}_URL"] = upstream
    env.update(
        REDIS_URL=REDIS_URL,
        GATEWAY_REDIS_URL=REDIS_URL,
        GATEWAY_REDIS_PREFIX=prefix,
        GATEWAY_RATE_LIMIT_IP="100000000/minute",
        GATEWAY_RATE_LIMIT_USER="100000000/minute",
        GATEWAY_RATE_LIMIT_LOGIN="100000000/minute",
        GATEWAY_TENANT_EVENTS_ENABLED="false",
        GATEWAY_LOG_LEVEL="INFO",
    )
    return env


def gateway_argv(port: int) -> list[str]:
    # As platform/processes.toml runs it.
    return [
        PYTHON, "-m", "uvicorn", "gateway.main:app", "--http", "gateway.server:HttpProtocol",
        "--no-proxy-headers", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip


_LATENCY = re.compile(r"^\s+(50|75|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, *, connections: int, duration: int, headers: dict[str, str]) -> dict:
    threads = 1 if connections == 1 else 2
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    output = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {int(p): float(v) * _UNITS[u] for p, v, u in _LATENCY.findall(output)}
    total = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    )
    return {"rps": rps, "p50": latency.get(50), "p99": latency.get(99), "requests": total, "errors": errors}


def token_and_jwks(directory: Path) -> tuple[str, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "bench", "use": "sig"}
    path = directory / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    now = int(time.time())
    claims = {
        "sub": "bench-user",
        "tenantId": TENANT_ID,
        "roles": ["member"],
        "permissions": [],
        "iat": now,
        "exp": now + 3600,
        "iss": os.environ.get("JWT_ISSUER", "kanban-identity"),
        "aud": os.environ.get("JWT_AUDIENCE", "kanban-platform"),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"}), path


async def _timed_requests(port: int, *, count: int, headers: dict[str, str]) -> list[float]:
    """Sequential GETs through the gateway on one keep-alive connection; each one's latency in ms."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"GET /api/projects HTTP/1.1\r\n{head}\r\n".encode()
    latencies = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status_and_headers = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", status_and_headers, re.IGNORECASE).group(1))
            await reader.readexactly(length)
            if not status_and_headers.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(status_and_headers[:200])
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.005)
    finally:
        writer.close()
    return latencies


async def _slow_client(port: int, *, stop: asyncio.Event, headers: dict[str, str]) -> int:
    """One client that sends a 1 KiB login body one byte every 2 s, reconnecting when refused."""
    rounds = 0
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    while not stop.is_set():
        rounds += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"POST /api/auth/token HTTP/1.1\r\n{head}Content-Type: application/json\r\n"
                f"Content-Length: 1024\r\n\r\n".encode()
            )
            while not stop.is_set() and not reader.at_eof():
                writer.write(b" ")
                await writer.drain()
                try:
                    await asyncio.wait_for(reader.read(1), timeout=2)  # the 408, or nothing yet
                except TimeoutError:
                    continue
                break
            writer.close()
        except OSError:
            await asyncio.sleep(0.1)
    return rounds


async def _slow_clients_run(port: int, *, clients: int, headers: dict[str, str]) -> None:
    """The slow clients, in a process of their own (so they share no event loop with the measuring
    client); they trickle until the process is terminated."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await asyncio.gather(*(_slow_client(port, stop=stop, headers=headers) for _ in range(clients)))


def slow_clients_measure(
    port: int, *, clients: int, samples: int, headers: dict[str, str], rounds: int = 6, settle: float = 3
) -> dict:
    """Alternating phases without and with the slow clients, so that a change in the machine's
    own load (it is shared) falls on both sides rather than on one."""
    asyncio.run(_timed_requests(port, count=50, headers=headers))  # warm up
    baseline: list[float] = []
    loaded: list[float] = []
    for _ in range(rounds):
        baseline += asyncio.run(_timed_requests(port, count=samples // rounds, headers=headers))
        worker = subprocess.Popen(
            [PYTHON, __file__, "--slow-client-worker", str(port), "--slow-clients", str(clients)],
            env={**os.environ, "BENCH_HEADERS": json.dumps(headers)},
        )
        time.sleep(settle)  # every slow client connected and trickling
        loaded += asyncio.run(_timed_requests(port, count=samples // rounds, headers=headers))
        worker.terminate()
        worker.wait(timeout=10)
    return {"baseline": baseline, "loaded": loaded}


def p(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    parser.add_argument("--slow-clients", type=int, default=50)
    parser.add_argument("--samples", type=int, default=900, help="timed requests per slow-client side")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds without and with slow clients")
    parser.add_argument("--settle", type=float, default=3, help="seconds for the slow clients to connect")
    parser.add_argument("--slow-client-worker", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.slow_client_worker:
        headers = json.loads(os.environ["BENCH_HEADERS"])
        asyncio.run(_slow_clients_run(args.slow_client_worker, clients=args.slow_clients, headers=headers))
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: sudo apt-get install -y wrk")

    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    processes = Processes()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        token, jwks_path = token_and_jwks(directory)
        (directory / "bare_app.py").write_text(BARE_APP)
        (directory / "wsgi_app.py").write_text(WSGI_APP)
        base_env = {
            **os.environ,
            "BENCH_JWKS": str(jwks_path),
            "BENCH_TENANT_ID": TENANT_ID,
            "PYTHONPATH": f"{directory}:{ROOT}",
        }
        auth = {"Host": HOST, "Authorization": f"Bearer {token}"}
        try:
            bare_port, gateway_port = free_port(), free_port()
            processes.start(
                [PYTHON, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1", "--port", str(bare_port),
                 "--no-access-log", "--log-level", "warning"],
                env=base_env, port=bare_port,
            )  # fmt: skip
            processes.start(
                gateway_argv(gateway_port), env=gateway_env(base_env, f"http://127.0.0.1:{bare_port}", prefix),
                port=gateway_port,
            )  # fmt: skip
            gateway_url = f"http://127.0.0.1:{gateway_port}/api/projects"
            bare_url = f"http://127.0.0.1:{bare_port}/api/projects"
            # Warm: JWKS fetched, tenant cached, connections pooled.
            for _ in range(3):
                wrk(gateway_url, connections=4, duration=1, headers=auth)
            rows = {}
            for connections in (1, 64):
                rows[("bare", connections)] = wrk(
                    bare_url, connections=connections, duration=args.duration, headers=auth
                )
                rows[("gateway", connections)] = wrk(
                    gateway_url, connections=connections, duration=args.duration, headers=auth
                )

            wsgi_port, slow_gateway_port = free_port(), free_port()
            processes.start(
                [PYTHON, "-m", "gunicorn", "wsgi_app:app", "--bind", f"127.0.0.1:{wsgi_port}", "--workers", "1",
                 "--threads", "4", "--worker-class", "gthread", "--timeout", "60", "--no-control-socket"],
                env=base_env, port=wsgi_port,
            )  # fmt: skip
            processes.start(
                gateway_argv(slow_gateway_port),
                env=gateway_env(base_env, f"http://127.0.0.1:{wsgi_port}", prefix + "-slow"),
                port=slow_gateway_port,
            )
            slow = slow_clients_measure(
                slow_gateway_port, clients=args.slow_clients, samples=args.samples, headers=auth,
                rounds=args.rounds, settle=args.settle,
            )  # fmt: skip
        finally:
            processes.stop()
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
            client.close()

    print()
    print(f"{'':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for (target, connections), row in rows.items():
        print(
            f"{target + f' @ {connections} conn':28} {row['rps']:>9.0f} {row['p50']:>8.2f} {row['p99']:>8.2f} "
            f"{row['errors']:>7}"
        )
    added = rows[("gateway", 1)]["p50"] - rows[("bare", 1)]["p50"]
    share = rows[("gateway", 64)]["rps"] / rows[("bare", 64)]["rps"]
    errors = sum(row["errors"] for row in rows.values())
    base_p99, loaded_p99 = p(slow["baseline"], 0.99), p(slow["loaded"], 0.99)
    ratio = loaded_p99 / base_p99
    bare, through = rows[("bare", 64)], rows[("gateway", 64)]
    results_report(
        "gateway",
        [
            Result(
                "gateway added latency p50 @ 1 connection",
                added,
                "ms",
                "<= 1 ms",
                target_at_most(added, 1.0),
                detail=f"bare {rows[('bare', 1)]['p50']:.2f} ms, gateway {rows[('gateway', 1)]['p50']:.2f} ms",
            ),
            Result(
                "gateway throughput / bare @ 64 connections",
                share * 100,
                "%",
                ">= 10%",
                target_at_least(share, 0.10),
                ratio=share,
                detail=f"{through['rps']:,.0f} of {bare['rps']:,.0f}/s",
            ),
            Result("errors (every wrk run)", errors, "", "0", errors == 0),
            Result(
                f"p99 with {args.slow_clients} slow clients / without",
                ratio,
                "x",
                "<= 2x",
                ratio <= 2.0,
                detail=(
                    f"{loaded_p99:.2f} / {base_p99:.2f} ms, p50 {statistics.median(slow['loaded']):.2f} / "
                    f"{statistics.median(slow['baseline']):.2f} ms"
                ),
            ),
        ],
    )
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
