"""The baseline: entries keyed on a finding's signature excuse exactly those findings, and nothing written for one deviation hides another."""
from __future__ import annotations

import datetime
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from helpers import RunSuite, run_output

from conformance.contract.findings import Finding, Signature
from conformance.gate.baseline import BaselineError, Entry, load_baseline, review
from conformance.mock.mutants import MUTANTS

TODAY = datetime.date(2026, 12, 2)
ENTRY = {"promise": "400 missing_api_token", "check": "status and code", "status": 401, "code": "missing_api_token",
         "reason": "staging answers 401 (TICKET-1)", "expires": "2999-12-31"}
SCENARIOS = ("--pyargs", "conformance.test_scenarios", "-p", "no:xdist")


def write(tmp_path: Path, entries: list[dict[str, object]] | str, name: str = "baseline.yaml") -> Path:
    """A baseline file holding these entries (or this raw text)."""
    path = tmp_path / name
    path.write_text(entries if isinstance(entries, str) else yaml.safe_dump(entries), encoding="utf-8")
    return path


def run(run_suite: RunSuite, mutants: str, *args: str | Path) -> tuple[int, str]:
    """The scenarios against these mutants, in this process; exit code and output."""
    done = run_suite(*SCENARIOS, "--mock-mutant", mutants, "--request-timeout", "2", *args)
    return done.ret, run_output(done)


def failing_promises(report: Path) -> set[str]:
    """The promises a JSON report says fail."""
    return {p["id"] for p in json.loads(report.read_text(encoding="utf-8"))["promises"] if p["verdict"] == "fails"}


def test_an_entry_excuses_its_finding_as_a_known_deviation(run_suite: RunSuite, tmp_path: Path) -> None:
    """401 for a missing token, baselined: exit 0, the scenario a known deviation in the terminal and in JUnit."""
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    code, output = run(run_suite, "missing-token-401", "--baseline", write(tmp_path, [ENTRY]), "--junitxml", junit,
                       "--conformance-report", report, "-k", "missing-token")
    assert code == 0, output
    assert "known deviation" in output and "TICKET-1" in output
    verdicts = {p["id"]: p["verdict"] for p in json.loads(report.read_text())["promises"]}
    assert verdicts["400 missing_api_token"] == "known deviation"
    skipped = [case for case in ET.parse(junit).getroot().iter("testcase") if case.find("skipped") is not None]
    assert skipped and "known deviation" in str(skipped[0].find("skipped").get("message"))  # type: ignore[union-attr]


def test_an_entry_excuses_nothing_else(run_suite: RunSuite, tmp_path: Path) -> None:
    """The same entry against a server that also accepts unknown tokens: that regression still fails the run."""
    report = tmp_path / "report.json"
    code, output = run(run_suite, "missing-token-401,invalid-token-accepted", "--baseline", write(tmp_path, [ENTRY]),
                       "--conformance-report", report)
    assert code == 1, output
    assert "403 invalid_api_token" in failing_promises(report)
    assert "400 missing_api_token" not in failing_promises(report)


# (baselined mutant, another mutant breaking a different promise): the baseline must not hide the second.
PAIRS = [
    ("request-id-empty", "invalid-token-accepted"),
    ("request-id-empty", "scope-not-required"),
    ("errors-without-x-api-schema", "exclusivity-id-wins"),
    ("500-on-non-utf8-body", "already-allocated-409"),
]


@pytest.mark.parametrize(("accepted", "regression"), PAIRS, ids=[f"{a}+{b}" for a, b in PAIRS])
def test_a_baseline_written_for_one_mutant_hides_no_other(accepted: str, regression: str, run_suite: RunSuite, tmp_path: Path) -> None:
    """--write-baseline against one mutant passes that mutant alone, and fails it combined with one that breaks another promise."""
    baseline = tmp_path / "baseline.yaml"
    code, output = run(run_suite, accepted, "--write-baseline", baseline)
    assert code == 1 and baseline.exists(), output
    code, output = run(run_suite, accepted, "--baseline", baseline, "--strict-baseline")
    assert code == 0, output
    report = tmp_path / "combined.json"
    code, output = run(run_suite, f"{accepted},{regression}", "--baseline", baseline, "--conformance-report", report)
    assert code == 1, output
    # Only the regression's promises fail (the scenarios hold some of them; the accepted mutant's stay excused).
    failing = failing_promises(report)
    assert failing and failing <= set(MUTANTS[regression].breaks), (failing, output)


def test_strict_baseline_fails_on_an_entry_that_matched_nothing(run_suite: RunSuite, tmp_path: Path) -> None:
    """On the faithful mock the entry matches no finding: a note, or with --strict-baseline a failure naming it."""
    baseline = write(tmp_path, [ENTRY])
    code, output = run(run_suite, "faithful", "--baseline", baseline, "-k", "missing-token")
    assert code == 0 and "matched no finding" in output, output
    code, output = run(run_suite, "faithful", "--baseline", baseline, "--strict-baseline", "-k", "missing-token")
    assert code == 1 and "matched no finding" in output and "--strict-baseline" in output, output


def test_an_expired_entry_excuses_nothing_and_fails_the_run(run_suite: RunSuite, tmp_path: Path) -> None:
    """Past its date, the entry no longer excuses its finding, and the run says to fix or extend it."""
    report = tmp_path / "report.json"
    code, output = run(run_suite, "missing-token-401", "--baseline", write(tmp_path, [{**ENTRY, "expires": "2020-01-01"}]),
                       "-k", "missing-token", "--conformance-report", report)
    assert code == 1 and "expired on 2020-01-01" in output, output
    # The expired entry's own finding fails its promise: a note about the date alone would let it pass as a known deviation.
    assert "400 missing_api_token" in failing_promises(report), output


def test_a_bad_baseline_is_a_one_line_usage_error(run_suite: RunSuite, tmp_path: Path) -> None:
    """An invalid date is exit 4 with one sentence naming the entry, not an INTERNALERROR."""
    code, output = run(run_suite, "faithful", "--baseline", write(tmp_path, [{**ENTRY, "expires": "2026-13-01"}]))
    assert code == 4 and "entry 1" in output and "INTERNALERROR" not in output, output


@pytest.mark.parametrize(("entry", "message"), [
    ({**ENTRY, "expires": "2026-13-01"}, "entry 1: expires must be a date"),
    ({**ENTRY, "colour": "red"}, "entry 1 has unknown key 'colour'"),
    ({**ENTRY, "promise": "403 scope_not_grantd"}, "entry 1: promise '403 scope_not_grantd' is not a promise"),
    ({key: value for key, value in ENTRY.items() if key != "expires"}, "entry 1 lacks expires"),
    ({key: value for key, value in ENTRY.items() if key != "check"}, "entry 1 lacks check"),
    ({**ENTRY, "status": "401"}, "entry 1: status must be an HTTP status"),
    ({**ENTRY, "message": "("}, "entry 1: message is not a valid regular expression"),
    ({"id": "400 missing_api_token", "reason": "old"}, "entry 1 uses `id`, the 0.1 baseline format"),
    ("not a list", "must be a YAML list"),
])
def test_malformed_entries_name_the_entry(entry: object, message: str, tmp_path: Path) -> None:
    """Each problem is one BaselineError naming the entry and what to fix."""
    with pytest.raises(BaselineError, match=message.replace("(", r"\(").replace("'", "'")):
        load_baseline(write(tmp_path, entry if isinstance(entry, str) else [entry]))  # type: ignore[list-item]


def test_a_repeated_entry_is_refused(tmp_path: Path) -> None:
    """Two entries for one signature: keep one."""
    with pytest.raises(BaselineError, match="entry 2 repeats"):
        load_baseline(write(tmp_path, [ENTRY, ENTRY]))


def finding(status: int = 401, code: str = "missing_api_token", received: str = "401 missing_api_token") -> Finding:
    """A finding of the 400 missing_api_token promise."""
    return Finding(Signature("400 missing_api_token", "status and code", status, code, received), "Expected 400 missing_api_token",
                   "400 missing_api_token", received, "")


def test_entries_match_exactly_and_the_message_pattern_narrows() -> None:
    """Same promise, check, status and code; another status is not excused; a message pattern must match too."""
    entry = Entry("400 missing_api_token", "status and code", 401, "missing_api_token", "why", TODAY)
    assert entry.matches(finding())
    assert not entry.matches(finding(status=403, received="403 missing_api_token"))
    narrowed = Entry("400 missing_api_token", "status and code", 401, "missing_api_token", "why", TODAY, message="^401 ")
    assert narrowed.matches(finding()) and not narrowed.matches(finding(received="401 something else entirely".replace("401 ", "x")))


def test_a_finding_is_excused_once_when_recorded_and_the_review_reads_it(tmp_path: Path) -> None:
    """The log's excuser marks a finding as it is first recorded; the review reports entries used, matched nothing, or expired."""
    from conformance.contract.findings import FindingLog
    from conformance.gate.reporting import Observation

    baseline = load_baseline(write(tmp_path, [ENTRY, {**ENTRY, "status": 403}, {**ENTRY, "status": 404, "expires": "2020-01-01"}]))
    log = FindingLog()
    log.excuser = baseline.excuser(TODAY)
    seen = Observation("Expected 400 missing_api_token", "status and code", "400 missing_api_token", "401 missing_api_token", 401,
                       "missing_api_token")
    recorded = log.record(seen, "400 missing_api_token", "test_x")
    assert recorded.excused_by is not None and baseline.entry(recorded.excused_by).status == 401
    outcome = review(baseline, [recorded], TODAY)
    assert [e.status for e in outcome.used] == [401]
    assert [e.status for e in outcome.unmatched] == [403]
    assert [e.status for e in outcome.expired] == [404]


def test_written_entries_round_trip(tmp_path: Path) -> None:
    """An entry written for a finding loads back and excuses that finding."""
    from conformance.gate.baseline import write_baseline

    path = tmp_path / "written.yaml"
    write_baseline(path, [Entry.for_finding(finding(), TODAY)])
    loaded = load_baseline(path)
    assert loaded.excuse(finding(), TODAY) is not None
