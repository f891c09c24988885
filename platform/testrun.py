#!/usr/bin/env python3
"""Runs the test suites, each in its own pytest process with its service's settings, and sums them up.

    python platform/testrun.py                     # every suite (what `make test` runs)
    python platform/testrun.py gateway projects    # some suites (`make test SUITE="gateway projects"`)
    python platform/testrun.py -- -k health -x     # extra pytest arguments for every suite (`make test ARGS=...`)

A suite is a directory under tests/. Directories not listed in SUITES run with
config.settings.<dir> when that module exists. pytest's exit code 5 (no tests collected) is
not a failure. The last line is `N passed, N failed, N skipped`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
NO_TESTS_COLLECTED = 5


@dataclass(frozen=True)
class Suite:
    name: str
    settings: str | None  # config.settings.<settings>; None runs pytest without Django
    test_db_suffix: str | None = None


# In run order; e2e last (it boots the whole stack).
SUITES = [
    Suite("common", "identity"),
    Suite("identity", "identity"),
    Suite("tenancy", "tenancy"),
    Suite("projects", "projects"),
    Suite("provisioning", "projects"),
    Suite("shortener", "shortener"),
    Suite("analytics", "analytics"),
    Suite("events", "shortener", test_db_suffix="_events"),
    Suite("gateway", None),
    Suite("routes", None),  # every service's paths against the gateway's route table (no server)
    Suite("platform", None),
    Suite("browser", None),
    Suite("security", None),
    Suite("e2e", None),
]


@dataclass
class Result:
    suite: str
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    exit_code: int = 0
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code in (0, NO_TESTS_COLLECTED)


def suites_discover(selected: list[str]) -> list[Suite]:
    known = {suite.name: suite for suite in SUITES}
    present = sorted(p.name for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    extra = [
        Suite(name, name if (ROOT / "config" / "settings" / f"{name}.py").exists() else None)
        for name in present
        if name not in known
    ]
    ordered = [suite for suite in SUITES[:-1] if suite.name in present] + extra
    ordered += [suite for suite in SUITES[-1:] if suite.name in present]
    if selected:
        unknown = sorted(set(selected) - {suite.name for suite in ordered})
        if unknown:
            raise SystemExit(f"testrun: no suite {', '.join(unknown)} under tests/ (have: {', '.join(present)})")
        ordered = [suite for suite in ordered if suite.name in selected]
    return ordered


def has_tests(folder: Path) -> bool:
    return any(folder.rglob("test_*.py")) or any(folder.rglob("*_test.py"))


def suite_command(suite: Suite, *, junit: Path, extra: list[str]) -> list[str]:
    argv = [sys.executable, "-m", "pytest", f"tests/{suite.name}", f"--junitxml={junit}", "-q"]
    if suite.settings:
        argv.append(f"--ds=config.settings.{suite.settings}")
    else:
        argv += ["-p", "no:django"]
    return argv + extra


def suite_env(suite: Suite) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    # Each suite gets its own test databases, so suites can overlap with other runs on one server.
    env["TEST_DB_SUFFIX"] = env.get("TEST_DB_SUFFIX", "") + (suite.test_db_suffix or f"_{suite.name}")
    return env


def junit_counts(path: Path) -> tuple[int, int, int, int]:
    """passed, failed, errors, skipped from a pytest junit file."""
    root = ET.parse(path).getroot()  # noqa: S314 - written by pytest a moment ago
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = failures = errors = skipped = 0
    for node in suites:
        tests += int(node.get("tests", 0))
        failures += int(node.get("failures", 0))
        errors += int(node.get("errors", 0))
        skipped += int(node.get("skipped", 0))
    return tests - failures - errors - skipped, failures, errors, skipped


def suite_run(suite: Suite, *, extra: list[str], artifacts: Path) -> Result:
    result = Result(suite.name)
    if not has_tests(TESTS / suite.name):
        result.note = "no tests"
        return result
    junit = artifacts / f"junit-{suite.name}.xml"
    junit.unlink(missing_ok=True)
    argv = suite_command(suite, junit=junit, extra=extra)
    print(f"\n=== {suite.name}: {' '.join(argv[1:])}", flush=True)
    started = time.monotonic()
    result.exit_code = subprocess.call(argv, cwd=ROOT, env=suite_env(suite))
    result.seconds = time.monotonic() - started
    if junit.exists():
        result.passed, result.failed, result.errors, result.skipped = junit_counts(junit)
    if result.exit_code == NO_TESTS_COLLECTED:
        result.note = "no tests collected"
    elif not result.ok and result.failed + result.errors == 0:
        result.errors = 1  # pytest itself failed (import error, bad fixture, interrupted)
        result.note = f"pytest exited {result.exit_code}"
    return result


def table_print(results: list[Result]) -> None:
    print("\n suite         passed failed errors skipped    time  ")
    print(" ------------- ------ ------ ------ ------- -------")
    for r in results:
        mark = "ok" if r.ok else "FAIL"
        print(
            f" {r.suite:<13} {r.passed:>6} {r.failed:>6} {r.errors:>6} {r.skipped:>7} {r.seconds:>6.1f}s"
            f"  {mark} {r.note}".rstrip()
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("suites", nargs="*", help="suite names (directories under tests/); default: all")
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts", help="where junit files go")
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    selected = [name for item in args.suites for name in item.replace(",", " ").split()]
    args.artifacts.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for suite in suites_discover(selected):
            results.append(suite_run(suite, extra=extra, artifacts=args.artifacts))
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
        table_print(results)
        return 130
    table_print(results)
    passed = sum(r.passed for r in results)
    failed = sum(r.failed + r.errors for r in results)
    skipped = sum(r.skipped for r in results)
    print(f"{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
