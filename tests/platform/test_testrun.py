"""The test runner's bookkeeping, from junit files that a real pytest run writes."""

import subprocess
import sys
from pathlib import Path
from types import ModuleType

SAMPLE = """
import pytest

def test_passes():
    assert 1 + 1 == 2

def test_fails():
    assert 1 + 1 == 3

@pytest.mark.skip(reason="shown as skipped")
def test_skipped():
    assert False
"""


def test_counts_come_from_the_junit_file(testrun: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    junit = tmp_path / "junit.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:django", "-q", f"--junitxml={junit}", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 1
    assert testrun.junit_counts(junit) == (1, 1, 0, 1)


def test_suites_run_in_order_with_their_settings_and_e2e_last(testrun: ModuleType) -> None:
    suites = testrun.suites_discover([])
    names = [suite.name for suite in suites]
    assert names[-1] == "e2e"
    assert "platform" in names
    by_name = {suite.name: suite for suite in suites}
    assert by_name["platform"].settings is None
    command = testrun.suite_command(by_name["platform"], junit=Path("j.xml"), extra=["-x"])
    assert command[-3:] == ["-p", "no:django", "-x"]
    if "common" in by_name:
        assert "--ds=config.settings.identity" in testrun.suite_command(by_name["common"], junit=Path("j"), extra=[])


def test_a_suite_gets_its_own_test_database_suffix(testrun: ModuleType, monkeypatch) -> None:
    monkeypatch.setenv("TEST_DB_SUFFIX", "_ci")
    assert testrun.suite_env(testrun.Suite("projects", "projects"))["TEST_DB_SUFFIX"] == "_ci_projects"
    assert testrun.suite_env(testrun.Suite("events", "shortener", "_events"))["TEST_DB_SUFFIX"] == "_ci_events"


def test_an_unknown_suite_is_refused(testrun: ModuleType) -> None:
    try:
        testrun.suites_discover(["no_such_suite"])
    except SystemExit as exit_:
        assert "no suite no_such_suite" in str(exit_)
    else:
        raise AssertionError("an unknown suite name was accepted")
