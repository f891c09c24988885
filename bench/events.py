"""Events through the whole backbone: outbox -> relay -> broker -> consumer writing to PostgreSQL.

    .venv/bin/python bench/events.py [--events 30000] [--producers 2] [--per-transaction 10]
                                     [--latency-events 300] [--latency-rate 50] [--broker rabbitmq|redis]

`--broker redis` runs the same processes on the Redis-streams fallback (REDIS_URL).

Everything real and in separate processes: producers commit outbox rows with
`apps.events.outbox.publish` (shortener settings, a fresh database `bench_events`), one
`manage.py relay_outbox`, one `manage.py consume probe` whose handler INSERTs a row per event
(with the processed-event row, in one transaction per batch). Own exchange and queue names.

1. At rest: `--latency-events` single-event transactions at `--latency-rate`/s.
   commit-to-publish = outbox `sent_at` (set after RabbitMQ's confirm) - the producer's commit;
   commit-to-consume = the consumer's INSERT time - the producer's commit. Same machine clock.
2. Throughput: `--producers` processes commit `--events` in transactions of `--per-transaction`
   as fast as they can; events/s = events / (first commit start .. last consumer INSERT).
"""

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from results import Result, db_prefix, results_report, target_at_least, target_at_most

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DATABASE = f"{db_prefix()}events"
TAG = f"bench-events-{uuid.uuid4().hex[:8]}"
BROKERS = {
    "rabbitmq": os.environ.get("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    "redis": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
}


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.shortener",
        "DATABASE_URL": f"{POSTGRES_URL}/{DATABASE}",
        "EVENTS_EXCHANGE": TAG,
        "EVENTS_QUEUE_PREFIX": TAG,
        "EVENTS_RELAY_BATCH_SIZE": "500",
        "EVENTS_CONSUMER_PREFETCH": "1000",
        "EVENTS_CONSUMER_BATCH_SIZE": "250",
        "LOG_LEVEL": "WARNING",
    }


def database_create() -> None:
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        server.execute(f'CREATE DATABASE "{DATABASE}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=environment(), check=True)


def django_setup() -> None:
    os.environ.update(environment())
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def manage(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=environment())


def queue_ready(service: str, timeout: float = 30) -> None:
    from apps.events.transports import transport_connect
    from apps.events.transports.base import ConsumerQueues

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        transport = transport_connect(name="bench-wait")
        try:
            if transport.consumer_ready(ConsumerQueues.for_service(service, prefix=TAG), exchange=TAG):
                return
        finally:
            transport.close()
        time.sleep(0.2)
    raise TimeoutError(f"the {service} consumer's queue never appeared")


def produce(count: int, per_transaction: int, pause: float, results: "multiprocessing.Queue") -> None:
    """Commits `count` events; reports (event id, commit time) pairs and when it started."""
    django_setup()
    from django.db import transaction

    from apps.events.outbox import publish

    commits: list[tuple[str, float]] = []
    started = time.time()
    for start in range(0, count, per_transaction):
        with transaction.atomic():
            ids = [
                publish(
                    "URLAccessed",
                    {"code": f"b{start % 97}", "visit_number": n + 1, "user_agent": "bench"},
                    tenant_id=None,
                    actor_id=None,
                    aggregate_id=f"b{start % 97}",
                ).id
                for n in range(min(per_transaction, count - start))
            ]
        committed = time.time()
        commits.extend((event_id, committed) for event_id in ids)
        if pause:
            time.sleep(pause)
    results.put((started, commits))


def run_producers(*, processes: int, count: int, per_transaction: int, pause: float) -> tuple[float, dict]:
    results: multiprocessing.Queue = multiprocessing.Queue()
    share = count // processes
    workers = [
        multiprocessing.Process(target=produce, args=(share, per_transaction, pause, results)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    starts, commits = [], {}
    for _ in workers:
        started, pairs = results.get()
        starts.append(started)
        commits.update(pairs)
    for worker in workers:
        worker.join()
    return min(starts), commits


def wait_consumed(expected: int, timeout: float = 300) -> None:
    with psycopg.connect(f"{POSTGRES_URL}/{DATABASE}") as connection:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            (applied,) = connection.execute("SELECT count(*) FROM events_proberecord").fetchone()
            connection.commit()
            if applied >= expected:
                return
            time.sleep(0.05)
    raise TimeoutError(f"only {applied} of {expected} events were consumed")


def timings(commits: dict[str, float]) -> tuple[list[float], list[float], float]:
    """Per event: commit->publish ms, commit->consume ms; and the last consume time."""
    with psycopg.connect(f"{POSTGRES_URL}/{DATABASE}") as connection:
        rows = connection.execute(
            "SELECT o.event_id::text, extract(epoch FROM o.sent_at), extract(epoch FROM p.applied_at)"
            " FROM events_outboxevent o JOIN events_proberecord p ON p.event_id = o.event_id"
            " WHERE o.event_id = ANY(%s)",
            (list(commits),),
        ).fetchall()
    to_publish = [(float(sent) - commits[event_id]) * 1000 for event_id, sent, _ in rows]
    to_consume = [(float(applied) - commits[event_id]) * 1000 for event_id, _, applied in rows]
    return to_publish, to_consume, max(float(applied) for _, _, applied in rows)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def duplicates() -> int:
    with psycopg.connect(f"{POSTGRES_URL}/{DATABASE}") as connection:
        (count,) = connection.execute("SELECT count(*) - count(DISTINCT event_id) FROM events_proberecord").fetchone()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--per-transaction", type=int, default=10)
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--latency-rate", type=float, default=50.0)
    parser.add_argument("--consumers", type=int, default=1, help="`consume probe` processes on the one queue")
    parser.add_argument("--broker", choices=sorted(BROKERS), default="rabbitmq", help="the transport to measure")
    args = parser.parse_args()
    os.environ["EVENTS_BROKER_URL"] = BROKERS[args.broker]  # environment() passes it to every process

    database_create()
    django_setup()
    from django.db import connections

    from apps.events.transports import transport_connect
    from apps.events.transports.base import ConsumerQueues

    connections.close_all()  # nothing shared with the producer processes
    consumers = [manage("consume", "probe") for _ in range(args.consumers)]
    relay = manage("relay_outbox")
    try:
        queue_ready("probe")

        _, rest_commits = run_producers(
            processes=1, count=args.latency_events, per_transaction=1, pause=1 / args.latency_rate
        )
        wait_consumed(args.latency_events)
        rest_publish, rest_consume, _ = timings(rest_commits)

        started, load_commits = run_producers(
            processes=args.producers, count=args.events, per_transaction=args.per_transaction, pause=0
        )
        produced_in = max(load_commits.values()) - started
        wait_consumed(args.latency_events + len(load_commits))
        load_publish, load_consume, last_applied = timings(load_commits)
        throughput = len(load_commits) / (last_applied - started)
    finally:
        for process in (relay, *consumers):
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        transport = transport_connect(name="bench-cleanup")
        transport.queues_delete(ConsumerQueues.for_service("probe", prefix=TAG), exchange=TAG)
        transport.exchange_delete(TAG)
        transport.close()

    print(
        f"\nbroker {args.broker}, events {len(load_commits)}, "
        f"producers {args.producers} x {args.per_transaction} events/transaction, "
        f"consumers {args.consumers}"
    )
    rest_p50 = statistics.median(rest_publish)
    repeated = duplicates()
    results_report(
        "events",
        [
            Result(
                f"events end to end ({args.broker})",
                throughput,
                "/s",
                ">= 2,000/s",
                target_at_least(throughput, 2000),
                detail=f"producers alone committed {len(load_commits) / produced_in:,.0f}/s",
            ),
            Result(
                f"commit -> publish confirmed p50, at rest ({args.latency_rate:.0f}/s)",
                rest_p50,
                "ms",
                "<= 20 ms",
                target_at_most(rest_p50, 20),
                detail=f"p99 {percentile(rest_publish, 99):.1f} ms",
            ),
            Result(
                "commit -> consumed p50, at rest",
                statistics.median(rest_consume),
                "ms",
                detail=f"p99 {percentile(rest_consume, 99):.1f} ms",
            ),
            Result(
                "commit -> consumed p50, under load",
                statistics.median(load_consume),
                "ms",
                detail=f"p99 {percentile(load_consume, 99):.1f} ms; publish p50 {statistics.median(load_publish):.1f}",
            ),
            Result("duplicates applied", repeated, "", "0", repeated == 0),
        ],
    )


if __name__ == "__main__":
    main()
