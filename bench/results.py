"""What every benchmark hands to bench/run.py: a list of Results, each one number with its target.

A benchmark builds its Results and calls `results_report(...)` at the end of its main(): it prints
the benchmark's own table, and, when the runner set BENCH_RESULTS, writes them there as JSON. So
each benchmark still runs on its own (`.venv/bin/python bench/board.py --cards 2000`), and the
runner needs nothing from it but that file.

The environment a benchmark may share with others on one machine comes from three variables the
runner passes on (each with the default it always had): BENCH_REDIS_DB, BENCH_PORT_BASE and
BENCH_DB_PREFIX.
"""

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Result:
    name: str  # what was measured, e.g. "board JSON p50, 2,000 cards"
    value: float | None  # the number; None when it could not be measured
    unit: str  # "ms", "/s", "%", "x", "s", "" (a count)
    target: str = ""  # e.g. "<= 80 ms"; empty when the number has no target
    ok: bool | None = None  # the target met; None without a target
    ratio: float | None = None  # to the ceiling measured in the same run (bench/capacity.py)
    detail: str = ""  # anything else worth a glance (p95, errors, queries)

    @property
    def measured(self) -> bool:
        return self.value is not None and math.isfinite(self.value)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def redis_db(default: int) -> int:
    return env_int("BENCH_REDIS_DB", default)


def port_base(default: int) -> int:
    return env_int("BENCH_PORT_BASE", default)


def db_prefix(default: str = "bench_") -> str:
    return os.environ.get("BENCH_DB_PREFIX") or default


def target_at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def target_at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def value_format(value: float | None, unit: str) -> str:
    if value is None:
        return "not measured"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "x":
        return f"{value:.2f}x"
    if abs(value) >= 100 or float(value).is_integer():
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip() if unit not in ("/s",) else f"{text}/s"


def results_report(bench: str, results: list[Result]) -> None:
    """Prints the benchmark's table; writes the results where the runner asked for them."""
    width = max((len(result.name) for result in results), default=4)
    print(f"\n{bench}\n{'what':<{width}} | target | measured | result")
    for result in results:
        verdict = "—" if result.ok is None else ("pass" if result.ok else "FAIL")
        extra = f" ({result.detail})" if result.detail else ""
        if result.ratio is not None:
            extra += (
                f", {result.ratio:.1%} of the ceiling" if result.ratio <= 1 else f", {result.ratio:,.0f}x the ceiling"
            )
        print(
            f"{result.name:<{width}} | {result.target or '—'} | "
            f"{value_format(result.value, result.unit)}{extra} | {verdict}"
        )
    destination = os.environ.get("BENCH_RESULTS")
    if destination:
        Path(destination).write_text(json.dumps([asdict(result) for result in results], indent=1))
