"""The end-of-run summary: a verdict per promise in the terminal, the JSON and Markdown reports, JUnit properties."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import MOCK_TARGET_YAML, RunSuite, ServedMock, run_output, unpadded

from conformance.contract.findings import Finding, Signature
from conformance.contract.outcomes import Cause, Outcome, Verdict, verdict_of_causes
from conformance.contract.promises import (
    BY_ID,
    CONFORMS,
    FAILED,
    FAILS,
    KNOWN_DEVIATION,
    NOT_PROVOKED,
    NOT_REACHED,
    NOT_RUN,
    PASSED,
    PROMISES,
    SKIPPED,
    TestOutcome,
    verdict_of,
)
from conformance.gate.summary import Summary, write_report
from conformance.wire.transport import BudgetExhausted

SCOPE_OR_CAPABILITIES = "test_scenario and (scope-not-granted or invalid-capabilities or missing-token)"


def fixtures_without(tmp_path: Path, credential: str) -> Path:
    """The mock's target fixtures minus one credential."""
    lines = MOCK_TARGET_YAML.read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / f"without-{credential}.yaml"
    path.write_text("".join(line for line in lines if not line.strip().startswith(f"{credential}:")), encoding="utf-8")
    return path


def promise_lines(stdout: str) -> dict[str, str]:
    """The summary's lines by promise id: {"403 scope_not_granted": "conforms ... : 1 passed"}."""
    lines = {}
    for line in stdout.splitlines():
        for promise in PROMISES:
            if re.match(rf"^[a-z ]+ {re.escape(promise.id)}: ", line):
                lines[promise.id] = line
    return lines


@pytest.fixture
def side_effect_run(tmp_path: Path, run_suite: RunSuite) -> tuple[int, str, dict[str, object], ET.Element]:
    """A mutant whose 403 scope_not_granted still allocates, fixtures lacking invalid_capabilities: exit code, stdout, JSON, JUnit."""
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    done = run_suite(
        "--pyargs", "conformance", "-k", SCOPE_OR_CAPABILITIES, "--mock-mutant", "scope-denied-still-allocates",
        "--target-fixtures", fixtures_without(tmp_path, "invalid_capabilities"), "--conformance-report", report, "--junitxml", junit,
    )
    return done.ret, done.stdout.str(), json.loads(report.read_text(encoding="utf-8")), ET.parse(junit).getroot()


def test_terminal_shows_one_line_per_promise_with_its_verdict(side_effect_run: tuple[int, str, dict[str, object], ET.Element]) -> None:
    """Conforms with counts, fails with test ids, not provoked with the skip reason naming the key, not run."""
    returncode, stdout, _, _ = side_effect_run
    assert returncode == 1, stdout
    lines = promise_lines(stdout)
    assert set(lines) == set(BY_ID), stdout
    assert unpadded(lines["403 scope_not_granted"]) == "conforms 403 scope_not_granted: 1 test(s) judged it, no finding"
    assert unpadded(lines["no side effects"]).startswith("fails no side effects: 1 deviation(s): Rejected request changed an allocation")
    capabilities = "not provoked 403 invalid_capabilities_token: needs credentials.invalid_capabilities"
    assert unpadded(lines["403 invalid_capabilities_token"]).startswith(capabilities)
    assert unpadded(lines["response shape"]) == "conforms response shape: checked by other tests (none of its own ran), no finding"
    assert unpadded(lines["429 rate_limit_reached"]).startswith("not run 429 rate_limit_reached: no test for it ran")
    assert "finding: no side effects · allocations unchanged · 403 scope_not_granted · seen 1x in test_scenario[scope-not-granted]" in stdout
    assert "requests sent" not in stdout


def test_failure_of_a_named_check_counts_against_that_promise_only(side_effect_run: tuple[int, str, dict[str, object], ET.Element]) -> None:
    """The scope scenario answered 403 correctly but moved an IP: only "no side effects" fails, in the JSON report too."""
    _, _, report, _ = side_effect_run
    assert report["schema_version"] == 2
    assert report["passed"] is False and report["status"] == "failed" and report["complete"] is False
    promises = {entry["id"]: entry for entry in report["promises"]}  # type: ignore[attr-defined]
    assert promises["403 scope_not_granted"]["verdict"] == CONFORMS
    side_effects = promises["no side effects"]
    assert side_effects["verdict"] == FAILS
    failed = [test for test in side_effects["tests"] if test["outcome"] == FAILED]
    assert [test["test"] for test in failed] == ["test_scenario[scope-not-granted]"]
    assert failed[0]["reason"].startswith("Rejected request changed an allocation: expected unchanged")
    findings = report["findings"]  # type: ignore[index]
    assert [(f["promise"], f["check"], f["status"], f["code"], f["count"]) for f in findings] == [  # type: ignore[union-attr]
        ("no side effects", "allocations unchanged", 403, "scope_not_granted", 1)]
    assert "Reproduce:" in findings[0]["example"] and "curl" in findings[0]["example"]  # type: ignore[index]
    capabilities = promises["403 invalid_capabilities_token"]
    assert capabilities["verdict"] == NOT_PROVOKED
    assert capabilities["needs"] == "credentials.invalid_capabilities"
    assert "needs credentials.invalid_capabilities" in capabilities["tests"][0]["reason"]
    assert report["requests"] is None


def test_junit_names_tests_and_carries_their_promises(side_effect_run: tuple[int, str, dict[str, object], ET.Element]) -> None:
    """JUnit keeps pytest's test names and lists each test's promises as properties."""
    _, _, _, junit = side_effect_run
    cases = {case.get("name"): case for case in junit.iter("testcase")}
    case = cases["test_scenario[scope-not-granted]"]
    promises = [prop.get("value") for prop in case.iter("property") if prop.get("name") == "promise"]
    assert promises == ["403 scope_not_granted", "no side effects"]
    assert case.find("failure") is not None
    assert cases["test_scenario[invalid-capabilities]"].find("skipped") is not None


def test_live_run_shows_requests_per_status(run_suite: RunSuite, served_mock: ServedMock, tmp_path: Path) -> None:
    """Against a URL, the summary ends with the requests sent per status and those the preflight sent; the JSON report has both."""
    report = tmp_path / "report.json"
    done = run_suite("--pyargs", "conformance", "-k", "test_scenario and missing-token", "--target-url", served_mock.base_url,
                     "--target-fixtures", MOCK_TARGET_YAML, "--max-rate", "1000", "--conformance-report", report)
    stdout = done.stdout.str()
    assert done.ret == 0, stdout + done.stderr.str()
    preflight = re.search(r"preflight: setup ok \((\d+) requests\)", stdout)
    assert preflight, stdout
    requests = json.loads(report.read_text(encoding="utf-8"))["requests"]
    assert requests["preflight"] == int(preflight.group(1)) and 0 < requests["preflight"] <= 20
    assert re.search(rf"^requests sent: {requests['sent']} \(200: \d+, 400: \d+\), plus {requests['preflight']} by the preflight$",
                     stdout, re.MULTILINE), stdout
    assert "conforms 400 missing_api_token: 1 test(s) judged it, no finding" in unpadded(stdout)


def finding(promise: str, count: int = 1, excused_by: str | None = None) -> Finding:
    """A finding of this promise."""
    found = Finding(Signature(promise, "status and code", 404, "ip_address_not_found", "404 ip_address_not_found"),
                    "Expected 400 invalid_argument", "400 invalid_argument | ambiguous", "404 ip_address_not_found", "Sent: POST ...",
                    ["test_a"], count)
    found.excused_by = excused_by
    return found


def test_markdown_report_is_a_table_of_promises_then_the_findings(tmp_path: Path) -> None:
    """The .md report has one row per promise, then each finding with its example, then what was not judged."""
    outcomes = [
        TestOutcome("test_a", ("mutual exclusivity",), FAILED, "expected 400 invalid_argument, received 404", ("mutual exclusivity",)),
        TestOutcome("test_b", ("403 scope_not_granted",), SKIPPED, "needs credentials.without_scope in the target fixtures (x.yaml)",
                    cause=Cause.NOT_PROVOKED),
    ]
    findings = [finding("mutual exclusivity")]
    verdicts = [verdict_of(promise, outcomes, findings, 0) for promise in PROMISES]
    summary = Summary("https://api.staging.example/core/v1", verdicts, [], None, [], [], {"sent": 3, "by_status": {"200": 1, "400": 2}},
                      findings=findings, not_judged=[v for v in verdicts if not v.judged])
    path = tmp_path / "out" / "report.md"
    write_report(path, summary)
    text = path.read_text(encoding="utf-8")
    assert "| mutual exclusivity | **fails** | 1 deviation(s): Expected 400 invalid_argument |" in text
    assert "| 403 scope_not_granted | not provoked | needs credentials.without_scope in the target fixtures (x.yaml) |" in text
    assert "| response shape | not reached | no response in this run went through its checks |" in text
    assert "## Findings" in text and "expected: 400 invalid_argument \\| ambiguous" not in text and "Sent: POST ..." in text
    assert "## Not judged" in text
    assert "| 400 | 2 |" in text
    assert "**failed**" in text


@pytest.mark.parametrize(
    ("outcomes", "findings", "reached", "verdict"),
    [
        ([PASSED, PASSED], [], 0, CONFORMS),
        ([PASSED, SKIPPED], [], 0, CONFORMS),
        ([PASSED, FAILED], [None], 0, FAILS),
        ([PASSED, "known deviation"], ["entry"], 0, KNOWN_DEVIATION),
        (["known deviation", FAILED], ["entry", None], 0, FAILS),
        ([FAILED], [], 0, NOT_REACHED),
        ([SKIPPED, SKIPPED], [], 0, NOT_PROVOKED),
        (["bounded", "bounded"], [], 0, NOT_RUN),
        (["bounded", FAILED], [], 0, NOT_REACHED),
        ([], [], 0, NOT_RUN),
        ([], [], 3, CONFORMS),
    ],
)
def test_verdict_rules(outcomes: list[str], findings: list[str | None], reached: int, verdict: str) -> None:
    """An unexcused finding fails; all excused is a known deviation; a test or check that judged it conforms; else why not.

    "bounded" is a test skipped by the run's own bounds (--max-requests, --max-duration): not run, unless another test got further.
    """
    reasons = {SKIPPED: "needs credentials.without_scope in the target fixtures (x.yaml)", FAILED: "stopped on another promise",
               "bounded": str(BudgetExhausted("the request budget of 60 is spent; raise --max-requests to run more"))}
    causes = {SKIPPED: Cause.NOT_PROVOKED, "bounded": Cause.NOT_RUN}
    tests = [TestOutcome(f"test_{index}", ("order of checks",), SKIPPED if outcome == "bounded" else Outcome(outcome), reasons.get(outcome, ""),
                         ("no side effects",), cause=causes.get(outcome)) for index, outcome in enumerate(outcomes)]
    found = [finding("order of checks", excused_by=excuse) for excuse in findings]
    for index, item in enumerate(found):
        item.signature = Signature(item.signature.promise, f"check {index}", 404, None, "")
    assert verdict_of(BY_ID["order of checks"], tests, found, reached).verdict == verdict


def test_unknown_promise_in_a_marker_is_a_usage_error(run_suite: RunSuite, tmp_path: Path) -> None:
    """A typo in a promise id stops the run at collection with one line naming the known ids."""
    test_file = tmp_path / "test_typo.py"
    test_file.write_text('import pytest\n\n@pytest.mark.promise("403 scope not granted")\ndef test_x():\n    pass\n', encoding="utf-8")
    done = run_suite(test_file)
    assert done.ret == 4
    assert "declares unknown promise '403 scope not granted'; known promises: 200 shape" in done.stderr.str()
    assert "Traceback" not in run_output(done)


def test_tests_without_a_promise_are_listed(run_suite: RunSuite, tmp_path: Path) -> None:
    """A test that declares no promise still runs, and the summary names it."""
    test_file = tmp_path / "test_plain.py"
    test_file.write_text("def test_plain():\n    pass\n", encoding="utf-8")
    done = run_suite("--pyargs", "conformance", test_file, "-k", "test_plain or (test_scenario and missing-token)")
    stdout = done.stdout.str()
    assert done.ret == 0, stdout
    assert "tests declaring no promise: test_plain (passed)" in stdout
    assert "conforms 400 missing_api_token: 1 test(s) judged it, no finding" in unpadded(stdout)


def test_report_needs_a_known_suffix(run_suite: RunSuite) -> None:
    """--conformance-report must be .md or .json."""
    done = run_suite("--pyargs", "conformance", "--conformance-report", "report.txt")
    assert done.ret == 4
    assert "--conformance-report report.txt must end in .md or .json" in done.stderr.str()


@pytest.mark.parametrize("excused_by", [None, "entry-1"])
def test_the_terminal_shows_a_finding_expected_and_received_not_an_empty_example_heading(excused_by: str | None) -> None:
    """Each finding in the terminal: its head, expected, received (and its baseline excuse); its example is the report's."""
    from conformance.gate.summary import terminal_lines

    findings = [finding("mutual exclusivity", excused_by=excused_by)]
    verdicts = [verdict_of(promise, [], findings, 0) for promise in PROMISES]
    summary = Summary("https://api.staging.example/core/v1", verdicts, [], None, [], [], None, findings=findings, not_judged=[])
    texts = [text for text, _ in terminal_lines(summary)]
    start = next(index for index, text in enumerate(texts) if text.startswith("finding: "))
    shown = texts[start + 1:start + 4]
    assert shown[:2] == ["  expected: 400 invalid_argument | ambiguous", "  received: 404 ip_address_not_found"]
    assert ("  known deviation, excused by baseline entry entry-1" in shown) is bool(excused_by)
    assert "  example:" not in texts and "Sent: POST ..." not in "\n".join(texts)


@pytest.mark.parametrize(("causes", "verdict"), [
    ([Cause.OPTED_OUT, Cause.OPTED_OUT], Verdict.OPTED_OUT),
    ([Cause.NOT_PROVOKED], Verdict.NOT_PROVOKED),
    ([Cause.OPTED_OUT, Cause.NOT_PROVOKED], Verdict.NOT_PROVOKED),
    ([Cause.NOT_RUN, Cause.NOT_RUN], Verdict.NOT_RUN),
    ([Cause.NOT_RUN, Cause.NOT_PROVOKED], Verdict.NOT_REACHED),
    ([Cause.NOT_REACHED], Verdict.NOT_REACHED),
    ([Cause.NOT_PROVOKED, None], Verdict.NOT_REACHED),
    ([None], Verdict.NOT_REACHED),
])
def test_a_promise_no_test_judged_gets_its_verdict_from_the_causes(causes: list[Cause | None], verdict: Verdict) -> None:
    """All tests skipped for one cause: that cause's verdict; the fixtures' two causes together: not provoked; else not reached."""
    assert verdict_of_causes(causes) == verdict


@pytest.mark.parametrize(("reason", "cause", "verdict"), [
    # Words that once decided the verdict decide nothing now: the cause does.
    ("not provoked: needs credentials.without_scope in the target fixtures", None, NOT_REACHED),
    ("opted out in the target fixtures (rate_limit.provoke: false)", Cause.NOT_PROVOKED, NOT_PROVOKED),
    ("the server stopped", Cause.NOT_PROVOKED, NOT_PROVOKED),
    ("not run: the request budget of 60 is spent", None, NOT_REACHED),
    ("anything", Cause.NOT_RUN, NOT_RUN),
])
def test_a_verdict_is_never_read_from_the_words_of_a_skip(reason: str, cause: Cause | None, verdict: str) -> None:
    """A skip's message is for the reader; its cause (set where the suite knew it) makes the verdict."""
    outcome = TestOutcome("test_x", ("order of checks",), SKIPPED, reason, cause=cause)
    assert verdict_of(BY_ID["order of checks"], [outcome], [], 0).verdict == verdict


def test_an_outcome_and_a_verdict_are_distinct_types_with_the_reports_words() -> None:
    """A test's known deviation is an Outcome, a promise's is a Verdict; both print as the reports always spelt them."""
    assert type(Outcome.DEVIATION) is not type(Verdict.KNOWN_DEVIATION)
    assert f"{Outcome.DEVIATION}" == f"{Verdict.KNOWN_DEVIATION}" == "known deviation"
    assert json.dumps([Verdict.NOT_PROVOKED, Outcome.SKIPPED]) == '["not provoked", "skipped"]'
