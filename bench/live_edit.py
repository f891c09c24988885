"""A card edit seen by another viewer, end to end through the gateway, and a join storm's presence:

    .venv/bin/python bench/live_edit.py [--port-base 18700] [--db-prefix liveedit_] [--redis-db 13]
                                        [--viewers 20] [--edits 200] [--storm 100]

1. Boots the dev launcher's stack (tests/e2e/stack.py: its own ports, databases and Redis DB, the
   demo seeded, the gateway's per-IP rate limit off) and signs in as the demo owner.
2. --viewers WebSocket viewers watch the demo board through the gateway, as a browser's board
   does. An editor renames a card through the gateway's API (`PATCH /api/tasks/<id>`), one edit
   at a time, --edits times; each viewer's `task.updated` for that edit is timed from the moment
   the editor had the API's answer (negative: the viewer heard first). Target: p99 <= 100 ms. An
   edit a viewer never heard within 5 s counts as the slowest there is.
3. A join storm: --storm more viewers open the board at once. Counted: the presence messages
   they and the viewers already there receive until the board is quiet again (each join telling
   every viewer the whole room is quadratic in the room's size), and how long until it is.
"""

import argparse
import asyncio
import json
import math
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a script run from bench/, not an installed package

import httpx  # noqa: E402
import websockets  # noqa: E402
from results import Result, db_prefix, port_base, redis_db, results_report, target_at_most  # noqa: E402

from tests.e2e.stack import stack_run  # noqa: E402

DEMO = {"email": "owner@demo.test", "password": "demo-pass-123"}
MISSING_AFTER_SECONDS = 5.0
QUIET_SECONDS = 1.0  # the storm is over once no presence message arrived for this long


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def sign_in(client: httpx.Client, host: str) -> str:
    for _ in range(30):
        response = client.post("/api/auth/token", headers={"Host": host}, json=DEMO)
        if response.status_code == 200:
            return response.json()["access"]
        time.sleep(float(response.headers.get("Retry-After", "2")))
    raise SystemExit(f"cannot sign in as the demo owner: {response.status_code} {response.text[:200]}")


class Viewer:
    """One board socket through the gateway, as the browser opens it; records what it hears."""

    def __init__(self, *, port: int, host: str, board_id: int, token: str) -> None:
        self.port, self.host, self.board_id, self.token = port, host, board_id, token
        self.ws: websockets.ClientConnection | None = None
        self.heard: dict[tuple[str, object], float] = {}  # (type, what) -> when
        self.presence_messages = 0
        self.presence_bytes = 0
        self.last_presence = 0.0
        self.listener: asyncio.Task | None = None

    async def open(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port))
        self.ws = await websockets.connect(
            f"ws://{self.host}/ws/boards/{self.board_id}/",
            sock=sock,
            subprotocols=["bearer", self.token],
            max_queue=None,
            open_timeout=60,
        )
        while json.loads(await asyncio.wait_for(self.ws.recv(), timeout=60))["type"] != "hello":
            pass
        self.listener = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                message = json.loads(raw)
                kind = message["type"]
                if kind == "ping":  # the server's heartbeat: answered as the board's page does
                    await self.ws.send("pong")
                elif kind == "presence":
                    self.presence_messages += 1
                    self.presence_bytes += len(raw)
                    self.last_presence = now
                elif kind == "task.updated":
                    self.heard[(kind, message["data"]["title"])] = now
        except websockets.ConnectionClosed:
            return

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
            await asyncio.gather(self.listener, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()


async def viewers_open(count: int, **where: object) -> list[Viewer]:
    viewers = [Viewer(**where) for _ in range(count)]  # type: ignore[arg-type]
    for start in range(0, count, 20):  # a few handshakes at a time, as pages load
        await asyncio.gather(*(viewer.open() for viewer in viewers[start : start + 20]))
    return viewers


async def quiet(viewers: list[Viewer], *, since: float, limit: float = 120) -> float:
    """Seconds from `since` until the last presence message, once none came for QUIET_SECONDS."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        last = max([since, *(viewer.last_presence for viewer in viewers)])
        if time.perf_counter() - last >= QUIET_SECONDS:
            return last - since
        await asyncio.sleep(0.05)
    return math.inf


async def edits_measure(
    *, gateway: str, host: str, token: str, board: dict, viewers: list[Viewer], edits: int
) -> list[float]:
    cards = [task for column in board["columns"] for task in column["tasks"]]
    headers = {"Host": host, "Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        for edit in range(edits):
            card = cards[edit % len(cards)]
            title = f"{card['title'].split(' · ')[0]} · edit {edit}"
            response = await client.patch(f"/api/tasks/{card['id']}", headers=headers, json={"title": title})
            answered = time.perf_counter()
            assert response.status_code == 200, response.text
            deadline = answered + MISSING_AFTER_SECONDS
            key = ("task.updated", title)
            while time.perf_counter() < deadline and not all(key in viewer.heard for viewer in viewers):
                await asyncio.sleep(0.001)
            for viewer in viewers:
                heard = viewer.heard.pop(key, None)
                latencies.append(math.inf if heard is None else (heard - answered) * 1000)
            await asyncio.sleep(0.02)
    return latencies


async def live_measure(args: argparse.Namespace, *, gateway: str, host: str, token: str, board_id: int) -> dict:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        board = await client.get(f"/api/boards/{board_id}", headers={"Host": host, "Authorization": f"Bearer {token}"})
        board.raise_for_status()
    where = {"port": args.port_base, "host": host, "board_id": board_id, "token": token}
    watching = await viewers_open(args.viewers, **where)
    await quiet(watching, since=time.perf_counter())
    print(f"  {len(watching)} viewers watching board {board_id}", flush=True)
    latencies = await edits_measure(
        gateway=gateway, host=host, token=token, board=board.json(), viewers=watching, edits=args.edits
    )
    for viewer in watching:
        viewer.presence_messages = viewer.presence_bytes = 0
    storm_started = time.perf_counter()
    storm = [Viewer(**where) for _ in range(args.storm)]  # type: ignore[arg-type]
    await asyncio.gather(*(viewer.open() for viewer in storm))
    joined = time.perf_counter() - storm_started
    settled = await quiet([*watching, *storm], since=storm_started)
    everyone = [*watching, *storm]
    result = {
        "latencies": latencies,
        "storm_joined_s": joined,
        "storm_settled_s": settled,
        "storm_messages": sum(viewer.presence_messages for viewer in everyone),
        "storm_bytes": sum(viewer.presence_bytes for viewer in everyone),
        "room": len(everyone),
    }
    for start in range(0, len(everyone), 50):
        await asyncio.gather(*(viewer.close() for viewer in everyone[start : start + 50]), return_exceptions=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port-base", type=int, default=port_base(18700))
    parser.add_argument("--db-prefix", default=db_prefix("liveedit_") + ("live_" if db_prefix("") else ""))
    parser.add_argument("--redis-db", type=int, default=redis_db(13), help="the stack's Redis DB (+1: Celery's)")
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--storm", type=int, default=100)
    args = parser.parse_args()

    gateway = f"http://127.0.0.1:{args.port_base}"
    host = f"demo.localhost:{args.port_base}"
    with tempfile.TemporaryDirectory() as scratch, stack_run(
        port_base=args.port_base, db_prefix=args.db_prefix, redis_db=args.redis_db,
        data_dir=Path(scratch) / "data", seed=True, env={"GATEWAY_RATE_LIMIT_ENABLED": "0"},
    ), httpx.Client(base_url=gateway, timeout=60) as client:  # fmt: skip
        token = sign_in(client, host)
        projects = client.get("/api/projects", headers={"Host": host, "Authorization": f"Bearer {token}"}).json()
        projects = projects["items"] if isinstance(projects, dict) else projects
        board_id = next(project for project in projects if project["key"] == "DEMO")["boards"][0]["id"]
        measured = asyncio.run(live_measure(args, gateway=gateway, host=host, token=token, board_id=board_id))

    latencies = measured["latencies"]
    p99 = percentile(latencies, 0.99)
    heard = [latency for latency in latencies if math.isfinite(latency)]
    results_report(
        "live_edit",
        [
            Result(
                f"a card edit seen by another viewer, p99 after the API answered, {args.viewers} viewers",
                p99,
                "ms",
                "<= 100 ms",
                target_at_most(p99, 100),
                detail=(
                    f"{len(heard)} of {len(latencies)} deliveries of {args.edits} edits, "
                    f"p50 {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms; "
                    "PATCH and WebSockets through the gateway"
                ),
            ),
            Result(
                f"presence messages delivered while {args.storm} viewers join at once ({measured['room']} in the room)",
                measured["storm_messages"],
                "",
                detail=(
                    f"{measured['storm_bytes'] / 1e6:.2f} MB; all joined in {measured['storm_joined_s']:.1f} s, "
                    f"the last presence message at {measured['storm_settled_s']:.1f} s"
                ),
            ),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
