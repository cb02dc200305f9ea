"""The baseline: listed failures are known deviations that do not fail the run; fixed and expired entries are called out."""
from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from conftest import RunPytest

from conformance.baseline import Baseline, BaselineError, Entry, load_baseline, review
from conformance.promises import DEVIATION, FAILED, PASSED, SKIPPED, TestOutcome

# missing-token-401 breaks the two scenarios below; the invalid-token ones still conform.
MUTANT = ("--mock-mutant", "missing-token-401")
SELECT = ("-k", "test_scenario and (missing-token or invalid-token)")
TODAY = datetime.date(2025, 6, 1)


def write(tmp_path: Path, entries: list[dict[str, object]] | str, name: str = "baseline.yaml") -> Path:
    """A baseline file holding these entries (or this raw text)."""
    path = tmp_path / name
    path.write_text(entries if isinstance(entries, str) else yaml.safe_dump(entries), encoding="utf-8")
    return path


def run_suite(run_pytest: RunPytest, *args: str | Path) -> tuple[int, str]:
    """Run the selected scenarios against the mutant; exit code and stdout."""
    done = run_pytest("--pyargs", "conformance", *MUTANT, *SELECT, *args)
    return done.returncode, done.stdout + done.stderr


def test_listed_failures_are_known_deviations_and_do_not_fail_the_run(run_pytest: RunPytest, tmp_path: Path) -> None:
    """A failing promise listed in the baseline: exit 0, xfailed with the reason, in the terminal and in JUnit; a listed
    promise that conforms is reported as fixed."""
    baseline = write(tmp_path, [{"id": "400 missing_api_token", "reason": "staging answers 401 (TICKET-1)", "expires": "2999-12-31"},
                                {"id": "403 invalid_api_token", "reason": "was broken"}])
    junit = tmp_path / "junit.xml"
    returncode, output = run_suite(run_pytest, "--baseline", baseline, "--junitxml", junit)
    assert returncode == 0, output
    assert "1 xfailed" in output
    assert "known deviation  400 missing_api_token: staging answers 401 (TICKET-1) (test_scenario[missing-token])" in output
    assert f"baseline entry '403 invalid_api_token' now conforms: remove it from {baseline}" in output
    case = next(case for case in ET.parse(junit).getroot().iter("testcase") if case.get("name") == "test_scenario[missing-token]")
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message") == "known deviation: staging answers 401 (TICKET-1)"


def test_write_baseline_then_run_with_it_passes(run_pytest: RunPytest, tmp_path: Path) -> None:
    """--write-baseline records this run's failures by test name; the next run with it passes."""
    written = tmp_path / "written.yaml"
    returncode, output = run_suite(run_pytest, "--write-baseline", written)
    assert returncode == 1, output
    entries = load_baseline(written).entries
    assert [entry.id for entry in entries] == ["test_scenario[missing-token]"]
    assert entries[0].reason.startswith("ConformanceFailure: ")
    returncode, output = run_suite(run_pytest, "--baseline", written)
    assert returncode == 0, output
    assert "known deviation  400 missing_api_token" in output


def test_strict_baseline_fails_on_a_fixed_entry(run_pytest: RunPytest, tmp_path: Path) -> None:
    """With --strict-baseline, an entry that now conforms fails the run, saying which entry to remove."""
    baseline = write(tmp_path, [{"id": "400 missing_api_token", "reason": "401"}, {"id": "test_scenario[invalid-token]", "reason": "fixed"}])
    returncode, output = run_suite(run_pytest, "--baseline", baseline, "--strict-baseline")
    assert returncode == 1, output
    assert f"run fails: baseline entry 'test_scenario[invalid-token]' now conforms: remove it from {baseline} (--strict-baseline)" in output
    assert "1 xfailed" in output


def test_expired_entry_no_longer_excuses_and_fails_the_run(run_pytest: RunPytest, tmp_path: Path) -> None:
    """An entry past its date is named and fails the run; its failure shows as a failure again."""
    baseline = write(tmp_path, [{"id": "400 missing_api_token", "reason": "401", "expires": "2000-01-31"}])
    returncode, output = run_suite(run_pytest, "--baseline", baseline)
    assert returncode == 1, output
    expected = f"baseline entry '400 missing_api_token' expired on 2000-01-31: fix the deviation, or extend or remove the entry in {baseline}"
    assert f"run fails: {expected}" in output
    assert "fails            400 missing_api_token: test_scenario[missing-token]" in output


def test_malformed_baseline_is_a_one_line_usage_error(run_pytest: RunPytest, tmp_path: Path) -> None:
    """A bad baseline stops the run before any request, with one sentence and no traceback."""
    baseline = write(tmp_path, [{"id": "400 missing_api_token"}])
    done = run_pytest("--pyargs", "conformance", "--baseline", baseline)
    assert done.returncode == 4
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    reason = "needs a reason: say why the deviation is accepted"
    assert lines == [f"ERROR: katapult-conformance: baseline {baseline} entry 1 (400 missing_api_token) {reason}"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: x\n", "must be a YAML list of entries"),
        ("- [1, 2]\n", "entry 1 must be a mapping"),
        ("- {id: 400 missing_api_token, reason: r, until: 2025-01-01}\n", "entry 1 has unknown key 'until'"),
        ("- {reason: r}\n", "entry 1 needs an id"),
        ("- {id: 403 scope not granted, reason: r}\n", "id '403 scope not granted' is neither a promise"),
        ("- {id: 400 missing_api_token, reason: r, expires: next week}\n", "entry 1.expires must be a date like 2026-03-31"),
        ("- {id: test_a, reason: r}\n- {id: test_a, reason: s}\n", "lists 'test_a' twice"),
        ("- {id: [\n", "is not valid YAML at line"),
    ],
)
def test_malformed_baselines(tmp_path: Path, text: str, message: str) -> None:
    """Each problem is a BaselineError naming it."""
    with pytest.raises(BaselineError) as raised:
        load_baseline(write(tmp_path, text))
    assert message in str(raised.value)


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    """A missing file says so; an empty file is an empty baseline."""
    with pytest.raises(BaselineError, match="cannot read baseline"):
        load_baseline(tmp_path / "absent.yaml")
    assert load_baseline(write(tmp_path, "")).entries == ()


def test_dates_parse_and_expire_after_their_day(tmp_path: Path) -> None:
    """expires is a date; the entry still excuses on that day and not after."""
    baseline = load_baseline(write(tmp_path, "- {id: 400 missing_api_token, reason: r, expires: 2025-06-01}\n"))
    assert baseline.entries == (Entry("400 missing_api_token", "r", datetime.date(2025, 6, 1)),)
    assert baseline.excuse("test_scenario[missing-token]", ["400 missing_api_token"], TODAY) is not None
    assert baseline.excuse("test_scenario[missing-token]", ["400 missing_api_token"], TODAY + datetime.timedelta(days=1)) is None


def test_review_finds_used_fixed_and_expired() -> None:
    """Used: excused a failure; fixed: its tests ran and passed; skipped tests prove nothing; expired: past its date."""
    baseline = Baseline(Path("b.yaml"), (
        Entry("400 missing_api_token", "r"),
        Entry("403 invalid_api_token", "r"),
        Entry("403 scope_not_granted", "r"),
        Entry("test_old", "r", datetime.date(2020, 1, 1)),
    ))
    outcomes = [
        TestOutcome("test_a", ("400 missing_api_token",), DEVIATION, "r", ("400 missing_api_token",), "400 missing_api_token"),
        TestOutcome("test_b", ("403 invalid_api_token", "no side effects"), FAILED, "moved", ("no side effects",)),
        TestOutcome("test_c", ("403 scope_not_granted",), SKIPPED, "needs credentials.without_scope"),
        TestOutcome("test_old", ("mutual exclusivity",), PASSED),
    ]
    found = review(baseline, outcomes, TODAY)
    assert [entry.id for entry in found.used] == ["400 missing_api_token"]
    assert [entry.id for entry in found.fixed] == ["403 invalid_api_token"]
    assert [entry.id for entry in found.expired] == ["test_old"]
