"""The redirect (issue 11, "Performance"): a cached short link answered by the whole gateway,
its visit committed to the shortener's inbox before the 302, beside a bare app's same 302.

    .venv/bin/python bench/shortener.py [--duration 6] [--connections 64]

In one run, with wrk and the same connections:
(a) a bare ASGI app under uvicorn, one worker, with the gateway's own flags (`--http
    gateway.server:HttpProtocol --no-proxy-headers --no-access-log`), answering `GET /s/<code>`
    with the edge's 302 and headers;
(b) the real gateway, as platform/processes.toml runs it (one uvicorn worker, access log on, rate
    limits off as the other benchmarks run them), answering a link in its redirect cache
    (Redis DB BENCH_REDIS_DB, default 6) with each visit committed to `shortener_visitinbox` in a
    database of the run (`<BENCH_DB_PREFIX>shortener`, made by the shortener's migration);
(c) the gateway again at half of (b)'s throughput: wrk (Debian's, without -R) paces each
    connection with a Lua `delay()`, and the p99 is read at that load; the bare app under the
    same paced load shows what latency this (shared) machine gives anything at that moment.
A wrk Lua `response()` hook counts the 302s; afterwards the inbox holds one row per counted 302,
plus at most one per connection: a request still in flight when wrk stops was answered (and its
row committed) but not read.

Prints a table (target, measured, pass/fail); docs/benchmarks.md keeps the numbers.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import redis
from results import Result, db_prefix, port_base, redis_db, results_report, target_at_least, target_at_most

# bench/gateway.py's process helpers: this folder comes first on sys.path, so `gateway` here is
# that benchmark, not the gateway package (which only the processes started here import).
from gateway import Processes

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
REDIS_URL = f"redis://127.0.0.1:6379/{redis_db(6)}"
POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DB_NAME = f"{db_prefix()}shortener"
TENANT_ID = "5b0c6f0e-7e0e-4c8a-9a4e-2f1b9d1e0b01"
TARGET = "https://example.com/landing?from=share"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
HEADERS = {"User-Agent": BROWSER, "Referer": "https://news.example/item?id=7", "Accept": "text/html"}

# The bare app: the edge's 302 on every path (its headers, as the gateway's middleware adds them).
# It also stands in for every service behind the gateway: a visit the gateway forwards instead of
# answering (its row not committed) gets a 503, so it shows as an error, never as a counted 302.
BARE_APP = (
    f"TARGET = {TARGET.encode()!r}\n"
    + """
HEADERS = [
    (b"location", TARGET),
    (b"cache-control", b"private, no-store"),
    (b"x-robots-tag", b"noindex"),
    (b"content-length", b"0"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-request-id", b"0123456789abcdef0123456789abcdef"),
]
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if any(name == b"x-visitor-id" for name, _ in scope["headers"]):
        # Forwarded by the gateway (its visit not committed at the edge): counted as an error.
        await send({"type": "http.response.start", "status": 503, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 302, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b""})
"""
)

# Counts what each wrk thread saw; `done` adds the threads up. With PACE_MS, each connection waits
# about that long (uniformly 0.5x-1.5x, so connections do not march in step) between requests.
WRK_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) redirects = 0; others = 0 end
function response(status, headers, body)
  if status == 302 then redirects = redirects + 1 else others = others + 1 end
end
%s
function done(summary, latency, requests)
  local r, o = 0, 0
  for _, thread in ipairs(threads) do r = r + thread:get("redirects"); o = o + thread:get("others") end
  io.write(string.format("COUNTED redirects=%%d others=%%d\\n", r, o))
end
"""
PACE_LUA = """
local pace = %d
function delay() return math.random(math.floor(pace / 2), math.floor(pace * 3 / 2)) end
"""


def uvicorn_argv(app: str, port: int) -> list[str]:
    # The gateway as platform/processes.toml runs it; the bare app with the same flags.
    return [
        PYTHON, "-m", "uvicorn", app, "--http", "gateway.server:HttpProtocol", "--no-proxy-headers",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip


_LATENCY = re.compile(r"^\s+(50|75|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, *, connections: int, duration: int, script: Path) -> dict:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script)]
    for name, value in HEADERS.items():
        argv += ["-H", f"{name}: {value}"]
    output = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {int(p): float(v) * _UNITS[u] for p, v, u in _LATENCY.findall(output)}
    total = int(re.search(r"(\d+) requests in", output).group(1))
    counted = re.search(r"COUNTED redirects=(\d+) others=(\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(counted.group(2)) + (sum(int(n) for n in socket_errors.groups()) if socket_errors else 0)
    return {
        "rps": rps,
        "p50": latency.get(50),
        "p99": latency.get(99),
        "requests": total,
        "redirects": int(counted.group(1)),
        "errors": errors,
    }


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_cpu(process: subprocess.Popen, url: str, **options: object) -> dict:
    """A wrk run, and the server's CPU per request meanwhile (load-independent, unlike requests/s)."""
    before = cpu_seconds(process.pid)
    row = wrk(url, **options)  # type: ignore[arg-type]
    row["cpu_us"] = (cpu_seconds(process.pid) - before) / max(row["requests"], 1) * 1e6
    return row


def database_create() -> str:
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    url = f"{POSTGRES_URL}/{DB_NAME}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.shortener", "DATABASE_URL": url}
    env["DB_POOL_MAX_SIZE"] = "0"
    subprocess.run(
        [PYTHON, "-W", "ignore", "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    return url


def database_drop() -> None:
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def inbox_counts(url: str) -> dict[str, tuple[int, int]]:
    """Per code: rows, and commits (accessed_at is the transaction's now(): one value per commit)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT code, count(*), count(DISTINCT accessed_at) FROM shortener_visitinbox GROUP BY code"
        ).fetchall()
    return {code: (count, commits) for code, count, commits in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: sudo apt-get install -y wrk")

    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    processes = Processes()
    run = uuid.uuid4().hex[:8]
    codes = {phase: f"bench{phase}{run}" for phase in ("warm", "full", "half")}
    cache = redis.Redis.from_url(REDIS_URL)
    entry = json.dumps({"version": 1, "target": TARGET, "tenant_id": TENANT_ID, "expires_at": None})
    base = port_base(18600)
    bare_port, gateway_port = base + 1, base + 2
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        (directory / "bare_app.py").write_text(BARE_APP)
        counting = directory / "count.lua"
        counting.write_text(WRK_LUA % "")
        try:
            inbox_url = database_create()
            for code in codes.values():
                cache.set(f"shortlink:{code}", entry, ex=3600)
            env = {**os.environ, "PYTHONPATH": f"{directory}:{ROOT}"}
            bare_process = processes.start(uvicorn_argv("bare_app:app", bare_port), env=env, port=bare_port)
            upstream = f"http://127.0.0.1:{bare_port}"
            gateway_env = {
                **env,
                **{
                    f"{service}_URL": upstream
                    for service in ("IDENTITY", "TENANCY", "PROJECTS", "SHORTENER", "ANALYTICS")
                },
                "REDIS_URL": REDIS_URL,
                "GATEWAY_REDIS_URL": REDIS_URL,
                "GATEWAY_REDIS_PREFIX": f"bench-{run}",
                "GATEWAY_RATE_LIMIT_ENABLED": "0",
                "GATEWAY_TENANT_EVENTS_ENABLED": "false",
                "GATEWAY_VISITS_DATABASE_URL": inbox_url,
                "GATEWAY_LOG_LEVEL": "INFO",
            }
            gateway_process = processes.start(
                uvicorn_argv("gateway.main:app", gateway_port), env=gateway_env, port=gateway_port
            )
            bare_url = f"http://127.0.0.1:{bare_port}/s/{codes['full']}"
            gateway = f"http://127.0.0.1:{gateway_port}/s/"
            for _ in range(2):  # warm: the visitor salt fetched, the PostgreSQL statement prepared
                wrk(gateway + codes["warm"], connections=4, duration=1, script=counting)
                wrk(bare_url, connections=4, duration=1, script=counting)
            bare = wrk_cpu(
                bare_process, bare_url, connections=args.connections, duration=args.duration, script=counting
            )
            full = wrk_cpu(
                gateway_process, gateway + codes["full"], connections=args.connections, duration=args.duration,
                script=counting,
            )  # fmt: skip
            rate = full["rps"] / 2
            pace_ms = max(1, round(args.connections * 1000 / rate))
            paced = directory / "paced.lua"
            paced.write_text(WRK_LUA % (PACE_LUA % pace_ms))
            half = wrk(gateway + codes["half"], connections=args.connections, duration=args.duration, script=paced)
            # The same paced load on the bare app: the latency floor of this machine at this moment.
            bare_half = wrk(bare_url, connections=args.connections, duration=args.duration, script=paced)
            time.sleep(0.5)
            counts = inbox_counts(inbox_url)
        finally:
            processes.stop()
            for code in codes.values():
                cache.delete(f"shortlink:{code}")
            for key in cache.scan_iter(f"bench-{run}*"):
                cache.delete(key)
            cache.close()
            database_drop()

    print()
    print(f"{'':36} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'302s':>8} {'errors':>7} {'CPU us/req':>11}")
    for name, row in (
        ("bare ASGI app", bare),
        ("gateway, cached link + inbox", full),
        ("gateway at half load", half),
        ("bare ASGI app at that load", bare_half),
    ):
        cpu = f"{row['cpu_us']:>11.0f}" if "cpu_us" in row else f"{'':>11}"
        print(
            f"{name:36} {row['rps']:>9.0f} {row['p50']:>8.2f} {row['p99']:>8.2f} {row['redirects']:>8} "
            f"{row['errors']:>7} {cpu}"
        )
    share = full["rps"] / bare["rps"]
    errors = bare["errors"] + full["errors"] + half["errors"] + bare_half["errors"]
    rows_full, commits_full = counts.get(codes["full"], (0, 0))
    rows_half, commits_half = counts.get(codes["half"], (0, 0))
    counted = full["redirects"] + half["redirects"]
    rows = rows_full + rows_half
    # Every counted 302 has its row; at most one more per connection (in flight when wrk stopped).
    visits_ok = counted <= rows <= counted + 2 * args.connections
    print(f"inbox: {rows_full} rows in {commits_full} commits at full load, {rows_half} in {commits_half} at half")
    results_report(
        "shortener",
        [
            Result(
                f"cached redirect through the gateway / bare app @ {args.connections} connections",
                share * 100,
                "%",
                ">= 25%",
                target_at_least(share, 0.25),
                ratio=share,
                detail=(
                    f"{full['rps']:,.0f} of {bare['rps']:,.0f}/s; p99 {full['p99']:.1f} ms; CPU per request "
                    f"{full['cpu_us']:.0f} us, bare {bare['cpu_us']:.0f} us"
                ),
            ),
            Result(
                f"p99 at half that load ({half['rps']:,.0f}/s paced)",
                half["p99"],
                "ms",
                "<= 10 ms",
                target_at_most(half["p99"], 10.0),
                detail=f"p50 {half['p50']:.2f} ms, {pace_ms} ms between a connection's requests",
            ),
            Result(
                "bare app's p99 at the same paced load (the machine's floor)",
                bare_half["p99"],
                "ms",
                detail=f"p50 {bare_half['p50']:.2f} ms",
            ),
            Result("errors (non-302 and socket errors, every wrk run)", errors, "", "0", errors == 0),
            Result(
                "inbox rows - 302s counted by wrk",
                rows - counted,
                "",
                f"0 to {2 * args.connections} (in flight at wrk's stop)",
                visits_ok,
                detail=(
                    f"{rows:,} rows, {counted:,} 302s; "
                    f"{rows_full / max(commits_full, 1):.1f} rows per commit at full load"
                ),
            ),
        ],
    )
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
