"""Search over 10,000 tasks, through the front door, beside the projects service answering directly:

    .venv/bin/python bench/search.py [--port-base 18700] [--db-prefix searchbench_] [--redis-db 13]
                                     [--tasks 10000] [--queries 300]

1. Boots the dev launcher's stack (tests/e2e/stack.py: its own ports, databases and Redis DB, the
   demo seeded; the gateway's per-IP rate limit off), signs in as the demo owner and makes a
   project SRCH through the gateway.
2. Fills it with --tasks tasks in bulk, straight into the demo tenant's schema (the searching is
   measured, not the seeding): titles of 3-9 words, descriptions of 15-150 words and 0-4 comments
   of 5-40 words, all real English prose (runs of the standard library's docstrings, so words
   come with their natural frequencies); then builds every search vector with the service's own
   statement (apps.projects.search.REFRESH_ALL_SQL) and ANALYZEs, as autovacuum would.
3. --queries searches, one at a time, of what people type: a rare word (in 0.1-1% of the tasks),
   a common one (in over 5%: "the", "return", ...), two words, a word being typed (a prefix), an
   exact key, a key being typed; through the gateway
   (GET /api/search, target p50 <= 50 ms) and, the ceiling, against the projects service's port
   with the headers the gateway sends.
4. EXPLAIN ANALYZE of the search statement as a member and as an owner: the GIN index is used.
5. A comment added through the gateway (its transaction rebuilds the task's vector): p50.
"""

import argparse
import ast
import json
import os
import random
import re
import statistics
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a script run from bench/, not an installed package

import httpx  # noqa: E402
import jwt  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from results import Result, db_prefix, port_base, redis_db, results_report, target_at_most  # noqa: E402

from apps.projects import search  # noqa: E402 - plain SQL and helpers, no Django settings needed
from tests.e2e.stack import stack_run  # noqa: E402

POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DEMO = {"email": "owner@demo.test", "password": "demo-pass-123"}
KEY = "SRCH"


def corpus_load() -> list[str]:
    """Real English prose to write cards with: the docstrings of Python's standard library (some
    7,600 of them, 250,000 words, 8,800 distinct words with their natural frequencies), in a fixed
    order so that every run writes the same cards."""
    root = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in sorted(root.glob("*.py")) + sorted(root.glob("*/*.py")):
        if path.name.startswith("test") or "test" in path.parent.name:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc.split()) >= 4:
                    texts.append(" ".join(doc.split()))
    if len(texts) < 1000:
        raise SystemExit(f"found only {len(texts)} docstrings under {root}: is the standard library there?")
    return texts


def sign_in(client: httpx.Client, host: str) -> str:
    for _ in range(30):
        response = client.post("/api/auth/token", headers={"Host": host}, json=DEMO)
        if response.status_code == 200:
            return response.json()["access"]
        time.sleep(float(response.headers.get("Retry-After", "2")))
    raise SystemExit(f"cannot sign in as the demo owner: {response.status_code} {response.text[:200]}")


def seed(conn: psycopg.Connection, *, project_id: int, board_id: int, tasks: int, owner: str) -> dict:
    """Tasks and comments in bulk, then every vector by the service's statement."""
    from apps.projects.ranks import spread

    rng = random.Random(10)
    texts = corpus_load()

    def words(count: int) -> str:
        start = rng.randrange(len(texts))
        picked = []
        while len(picked) < count:
            picked += texts[start % len(texts)].split()
            start += 1
        return " ".join(picked[:count])

    found = conn.execute("SELECT id FROM projects_column WHERE board_id = %s ORDER BY position", [board_id])
    columns = [row[0] for row in found]
    ranks = spread(tasks // len(columns) + 1)
    started = time.perf_counter()
    with conn.cursor() as cursor:
        with cursor.copy(
            "COPY projects_task (project_id, board_id, column_id, number, key, title, description, rank, assignees,"
            " labels, reporter_id, priority, version, created_at, updated_at) FROM STDIN"
        ) as copy:
            for number in range(1, tasks + 1):
                title = words(rng.randint(3, 9)).rstrip(".,;:")
                description = words(rng.randint(15, 150))
                column = columns[number % len(columns)]
                copy.write_row(
                    (project_id, board_id, column, number, f"{KEY}-{number}", title, description,
                     ranks[number // len(columns)], "{}", "{}", owner, "medium", 1, "now", "now")
                )  # fmt: skip
        cursor.execute("UPDATE projects_project SET task_counter = %s WHERE id = %s", [tasks, project_id])
        ids = [row[0] for row in cursor.execute("SELECT id FROM projects_task WHERE project_id = %s", [project_id])]
        comments = 0
        with cursor.copy("COPY projects_comment (task_id, author_id, body, created_at) FROM STDIN") as copy:
            for task_id in ids:
                for _ in range(rng.choice((0, 0, 1, 1, 2, 3, 4))):
                    copy.write_row((task_id, owner, words(rng.randint(5, 40)), "now"))
                    comments += 1
    conn.commit()
    seeded = time.perf_counter() - started
    started = time.perf_counter()
    with conn.cursor() as cursor:
        cursor.execute(search.REFRESH_ALL_SQL)
        vectors = cursor.rowcount
    conn.commit()
    for table in ("projects_task", "projects_tasksearch", "projects_comment"):
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    conn.commit()
    refreshed = time.perf_counter() - started
    written = {word.lower() for text in texts for word in re.findall(r"[A-Za-z]{4,}", text)}
    return {
        "ids": ids,
        "comments": comments,
        "vectors": vectors,
        "seed_s": seeded,
        "refresh_s": refreshed,
        "words": written,
    }


def word_frequencies(conn: psycopg.Connection, words: set[str]) -> list[tuple[str, int]]:
    """How many tasks hold each word of 4+ letters as written (not a stem), most common first."""
    rows = conn.execute("SELECT word, ndoc FROM ts_stat($$SELECT vector FROM projects_tasksearch$$)").fetchall()
    return sorted(((word, ndoc) for word, ndoc in rows if word in words), key=lambda row: (-row[1], row[0]))


def queries_make(frequencies: list[tuple[str, int]], tasks: int, count: int) -> list[tuple[str, str]]:
    """(kind, text) pairs, the kinds in turn: what people type into a search box. A rare word is in
    0.1-1% of the tasks, a common one in over 5% (the most common there are: the worst case)."""
    rng = random.Random(7)
    common = [word for word, ndoc in frequencies if ndoc > tasks * 0.05] or [frequencies[0][0]]
    rare = [word for word, ndoc in frequencies if tasks * 0.001 <= ndoc <= tasks * 0.01] or [frequencies[-1][0]]
    middling = [word for word, ndoc in frequencies if tasks * 0.001 <= ndoc <= tasks * 0.05] or rare

    def typing() -> str:
        word = rng.choice(middling)
        return word[: rng.randint(3, len(word))]

    kinds = {
        "rare word": lambda: rng.choice(rare),
        "common word": lambda: rng.choice(common),
        "two words": lambda: f"{rng.choice(middling)} {rng.choice(middling)}",
        "word being typed": typing,
        "exact key": lambda: f"{KEY.lower() if rng.random() < 0.5 else KEY}-{rng.randint(1, tasks)}",
        "key being typed": lambda: f"{KEY}-{rng.randint(1, max(1, tasks // 100))}",
    }
    names = list(kinds)
    return [(names[index % len(names)], kinds[names[index % len(names)]]()) for index in range(count)]


def time_searches(client: httpx.Client, url: str, headers: dict, queries: list[tuple[str, str]]) -> dict:
    for _, text in queries[:5]:  # warm-up: connections, the tenant cache, PostgreSQL's buffers
        client.get(url, params={"q": text, "limit": 20}, headers=headers).raise_for_status()
    timings: dict[str, list[float]] = {}
    hits: list[int] = []
    first_key_ok = True
    for kind, text in queries:
        started = time.perf_counter()
        response = client.get(url, params={"q": text, "limit": 20}, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        response.raise_for_status()
        items = response.json()["items"]
        if kind == "exact key" and (not items or items[0]["key"] != text.upper()):
            first_key_ok = False
        hits.append(len(items))
        timings.setdefault(kind, []).append(elapsed)
    every = [value for values in timings.values() for value in values]
    return {"all": every, "by_kind": timings, "hits": hits, "first_key_ok": first_key_ok}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def explain(conn: psycopg.Connection, text: str, *, every_project: bool, user_id: str) -> tuple[str, float]:
    """The search's plan as selectors.task_search runs it (its planner setting first)."""
    query = search.SearchQuery.parse(text)
    conn.execute("SET LOCAL enable_seqscan = off")
    statement = "EXPLAIN (ANALYZE, FORMAT JSON) " + search.search_sql(query, every_project=every_project)
    plan = conn.execute(statement, search.search_params(query, user_id=user_id, limit=20)).fetchone()[0]
    conn.rollback()
    return json.dumps(plan), plan[0]["Execution Time"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port-base", type=int, default=port_base(18700))
    parser.add_argument("--db-prefix", default=db_prefix("searchbench_") + ("stack_" if db_prefix("") else ""))
    parser.add_argument("--redis-db", type=int, default=redis_db(13), help="the stack's Redis DB (+1 without RabbitMQ)")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--comments", type=int, default=20, help="comments added through the gateway, timed")
    args = parser.parse_args()

    gateway = f"http://127.0.0.1:{args.port_base}"
    host = f"demo.localhost:{args.port_base}"
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as scratch, stack_run(
        port_base=args.port_base, db_prefix=args.db_prefix, redis_db=args.redis_db,
        data_dir=Path(scratch) / "data", seed=True, env={"GATEWAY_RATE_LIMIT_ENABLED": "0"},
    ), httpx.Client(base_url=gateway, timeout=60) as client:  # fmt: skip
        token = sign_in(client, host)
        tenant_id = client.get("/api/tenants/demo", headers={"Host": f"localhost:{args.port_base}"}).json()["id"]
        through_gateway = {"Host": host, "Authorization": f"Bearer {token}"}
        project = client.post("/api/projects", headers=through_gateway, json={"key": KEY, "name": "Search bench"})
        project.raise_for_status()
        project_id, board_id = project.json()["id"], project.json()["boards"][0]["id"]
        owner_id = jwt.decode(token, options={"verify_signature": False})["sub"]  # the demo owner's user id

        with psycopg.connect(f"{POSTGRES_URL}/{args.db_prefix}projects") as registry:
            schema, isolation = registry.execute(
                "SELECT schema_name, isolation FROM project_tenants_tenant WHERE slug = 'demo'"
            ).fetchone()
        if isolation != "schema":
            raise SystemExit(f"the demo tenant is {isolation}-isolated; this benchmark seeds a schema")
        with psycopg.connect(f"{POSTGRES_URL}/{args.db_prefix}projects") as conn:
            conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
            data = seed(conn, project_id=project_id, board_id=board_id, tasks=args.tasks, owner=owner_id)
            print(
                f"seeded {len(data['ids']):,} tasks and {data['comments']:,} comments in {data['seed_s']:.1f} s; "
                f"{data['vectors']:,} vectors in {data['refresh_s']:.1f} s",
                flush=True,
            )
            frequencies = word_frequencies(conn, data["words"])
            size = conn.execute(
                "SELECT pg_size_pretty(pg_relation_size('task_search_gin')),"
                " avg(pg_column_size(vector))::int FROM projects_tasksearch"
            ).fetchone()
            print(f"GIN index {size[0]}, vectors {size[1]} bytes on average", flush=True)
            share = {word: ndoc / args.tasks for word, ndoc in frequencies}
            common_word = frequencies[0][0]
            middling_word = next((word for word, ndoc in frequencies if ndoc <= args.tasks * 0.05), common_word)
            rare_word = next((word for word, ndoc in frequencies if ndoc <= args.tasks * 0.005), frequencies[-1][0])
            plans = {}
            for word in (rare_word, middling_word, common_word):
                for every_project, who in ((False, "member"), (True, "owner")):
                    label = f"{who} searching {word!r} (in {share[word]:.1%} of tasks)"
                    plans[label] = explain(conn, word, every_project=every_project, user_id=owner_id)
        for label, (plan, milliseconds) in plans.items():
            print(f"EXPLAIN ANALYZE {label}: {milliseconds:.1f} ms, index used: {'task_search_gin' in plan}")

        queries = queries_make(frequencies, args.tasks, args.queries)
        token = sign_in(client, host)  # fresh: the demo's access tokens live minutes
        through_gateway["Authorization"] = f"Bearer {token}"
        gateway_run = time_searches(client, "/api/search", through_gateway, queries)
        direct = {"X-Tenant-ID": tenant_id, "Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port_base + 3}", timeout=60) as projects:
            direct_run = time_searches(projects, "/api/search", direct, queries)

        comment_times = []
        for index in range(args.comments):
            task_id = data["ids"][index * 37 % len(data["ids"])]
            started = time.perf_counter()
            response = client.post(
                f"/api/tasks/{task_id}/comments",
                headers=through_gateway,
                json={"body": f"bench note {uuid.uuid4().hex}"},
            )
            comment_times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
        noted = client.get("/api/search", params={"q": "bench note"}, headers=through_gateway).json()["items"]

    tasks = f"{len(data['ids']):,} tasks"
    p50 = statistics.median(gateway_run["all"])
    ceiling = statistics.median(direct_run["all"])
    by_kind = ", ".join(f"{kind} {statistics.median(values):.1f}" for kind, values in gateway_run["by_kind"].items())
    results.append(
        Result(
            f"search p50 through the gateway, {tasks}, {len(queries)} queries",
            p50,
            "ms",
            "<= 50 ms",
            target_at_most(p50, 50),
            ratio=p50 / ceiling if ceiling else None,
            detail=(
                f"p95 {percentile(gateway_run['all'], 0.95):.1f} ms; p50 by kind (ms): {by_kind}; "
                f"{statistics.mean(gateway_run['hits']):.1f} hits of 20 on average"
            ),
        )
    )
    results.append(
        Result(
            f"ceiling: search p50 against the projects service directly, {tasks}",
            ceiling,
            "ms",
            ratio=1.0,
            detail=f"p95 {percentile(direct_run['all'], 0.95):.1f} ms",
        )
    )
    results.append(
        Result(
            "an exact key is the first hit",
            float(gateway_run["first_key_ok"] and direct_run["first_key_ok"]),
            "",
            "1 (yes)",
            gateway_run["first_key_ok"] and direct_run["first_key_ok"],
        )
    )
    for label, (plan, milliseconds) in plans.items():
        used = "task_search_gin" in plan
        results.append(
            Result(
                f"EXPLAIN ANALYZE: {label}",
                milliseconds,
                "ms",
                "uses task_search_gin",
                used,
                detail="Bitmap Index Scan on task_search_gin" if used else "the GIN index is not used",
            )
        )
    comment_p50 = statistics.median(comment_times) if comment_times else None
    results.append(
        Result(
            "a comment added through the gateway (rebuilds its task's vector), p50",
            comment_p50,
            "ms",
            "found right after",
            len(noted) >= min(args.comments, 20),
            detail=(
                f"p95 {percentile(comment_times, 0.95):.1f} ms; all {args.tasks:,} vectors built in "
                f"{data['refresh_s']:.1f} s"
            )
            if comment_times
            else "",
        )
    )
    results_report("search", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
