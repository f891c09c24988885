"""What writing a database-mode tenant's events in its own database costs a board write, in one run.

    .venv/bin/python bench/tenant_outbox.py [--writes 200]

Each write is apps.projects.services.projects.project_create() (two events: ProjectCreated, ProjectUserAdded), timed
from the call to its return, the commit and the after-commit work included:
- schema mode: the events go to the service's outbox in the write's own transaction
- database mode: the events commit in the tenant's outbox and are moved right after the commit
- database mode, no move: as above but left for the relay's sweep (what a crash leaves);
  then one sweep moves them all, timed per event
The modes take turns write by write, so the machine's load weighs on each alike.
"""

import argparse
import statistics
import time
import uuid

from provisioning import bench_cleanup, bench_django_setup
from results import Result, results_report


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=200)
    args = parser.parse_args()
    database = bench_django_setup("tenant_outbox")
    try:
        from apps.projects.permissions import CallerClaims
        from apps.projects.services import projects
        from apps.projects.tenants import outbox, services
        from apps.projects.tenants.context import tenant_context

        def tenant(isolation: str):
            tenant_id = uuid.uuid4()
            slug = f"b{tenant_id.hex[:10]}"
            return services.tenant_provision(tenant_id=tenant_id, slug=slug, name=slug, isolation=isolation)

        def owner_of(target) -> CallerClaims:
            return CallerClaims(
                user_id="bench",
                tenant_id=str(target.tenant_id),
                roles=("owner",),
                permissions=frozenset({"create_project"}),
            )

        moving = outbox.tenant_outbox_move_after_commit
        modes = [
            ("schema mode", tenant("schema"), moving),
            ("database mode (move after commit)", tenant("database"), moving),
            ("database mode, no move", tenant("database"), lambda *args, **kwargs: None),  # left for the sweep
        ]
        timings: dict[str, list[float]] = {label: [] for label, _, _ in modes}
        # Interleaved, one write of each mode in turn, so a busy machine weighs on all of them alike.
        for number in range(args.writes):
            for index, (label, target, mover) in enumerate(modes):
                outbox.tenant_outbox_move_after_commit = mover
                with tenant_context(target):
                    started = time.perf_counter()
                    projects.project_create(caller=owner_of(target), key=f"M{index}N{number}", name=label)
                    timings[label].append((time.perf_counter() - started) * 1000)
        outbox.tenant_outbox_move_after_commit = moving
        rows = list(timings.items())
        started = time.perf_counter()
        moved = outbox.tenant_outboxes_sweep()
        sweep_ms = (time.perf_counter() - started) * 1000

        print(f"\n{args.writes} writes each (2 events per write)\n")
        print(f"{'write':<36} {'p50 ms':>8} {'p95 ms':>8}")
        for label, samples in rows:
            p50, p95 = _percentiles(samples)
            print(f"{label:<36} {p50:>8.2f} {p95:>8.2f}")
        print(f"\nrelay sweep: {moved} events moved in {sweep_ms:.0f} ms ({sweep_ms / max(moved, 1):.3f} ms per event)")
    finally:
        bench_cleanup(database)
    results = []
    for label, samples in rows:
        p50, p95 = _percentiles(samples)
        results.append(Result(f"project_create p50, {label}", p50, "ms", detail=f"p95 {p95:.1f} ms"))
    results.append(Result("relay sweep per event", sweep_ms / max(moved, 1), "ms", detail=f"{moved} events"))
    results_report("tenant_outbox", results)


if __name__ == "__main__":
    main()
