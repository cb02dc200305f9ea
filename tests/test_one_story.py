"""One story: whatever fails the run fails a test case too (terminal counts, last line, JUnit), and an opt-out is not a failure."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from helpers import MOCK_TARGET_YAML, SUBPROCESS_TIMEOUT, RunPytest, RunSuite, ServedMock, child_env, run_output, unpadded

from conformance.tools import mutation as runner

pytest_plugins = ["pytester"]

SCENARIOS = ("--pyargs", "conformance.test_scenarios", "-p", "no:cacheprovider", "--request-timeout", "2")
ONE_SCENARIO = (*SCENARIOS, "-k", "test_scenario and missing-token")
# A deviation no scenario exists for (X-Request-Id is judged by the response checks): seen by the scenarios, it fails none of them.
HEADER_MUTANT, HEADER_PROMISE = "request-id-empty", "X-Request-Id on every response"


@dataclass(frozen=True)
class Case:
    """One <testcase> of a JUnit report: its id as the mutation runner reads it, whether it failed, and its properties."""

    id: str
    failed: bool
    message: str
    properties: tuple[tuple[str, str], ...]

    def says(self, name: str) -> list[str]:
        """The values of one property."""
        return [value for key, value in self.properties if key == name]


def junit_cases(path: Path) -> list[Case]:
    """Every test case of a JUnit report."""
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        properties = tuple((str(p.get("name")), str(p.get("value"))) for p in case.iter("property"))
        cases.append(Case(runner.case_id(case), failure is not None, str(failure.get("message")) if failure is not None else "", properties))
    return cases


def run_cases(path: Path) -> list[Case]:
    """The cases the run itself reported (conformance::promise[...], conformance::run[...])."""
    return [case for case in junit_cases(path) if case.id.startswith("conformance::")]


def test_a_promise_failed_only_by_findings_fails_its_own_case(run_suite: RunSuite, pytester: pytest.Pytester) -> None:
    """No scenario exists for X-Request-Id: the run fails on its finding, and so does one case named for the promise, once."""
    junit = pytester.path / "junit.xml"
    result = run_suite(*SCENARIOS, "--mock-mutant", HEADER_MUTANT, "--junitxml", str(junit))
    assert result.ret == 1
    assert result.parseoutcomes()["failed"] == 1, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines([f"FAILED conformance::promise[[]{HEADER_PROMISE}[]]*", "*= 1 failed, * passed in *"])
    (case,) = [case for case in junit_cases(junit) if case.failed]
    assert case.id == f"conformance::promise[{HEADER_PROMISE}]"
    assert case.message.startswith(f"{HEADER_PROMISE}: ") and "\n" not in case.message
    assert case.says("charged promise") == [HEADER_PROMISE]
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "1"  # type: ignore[union-attr]


def test_a_faithful_run_reports_no_case_of_its_own(run_suite: RunSuite, pytester: pytest.Pytester) -> None:
    """On the faithful mock nothing fails: no extra case, the counts are the tests'."""
    junit = pytester.path / "junit.xml"
    result = run_suite(*SCENARIOS, "--junitxml", str(junit))
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert "failed" not in result.parseoutcomes()
    assert run_cases(junit) == [] and not any(case.failed for case in junit_cases(junit))
    assert len(junit_cases(junit)) == sum(result.parseoutcomes().values())


def test_require_complete_is_a_failing_case(run_suite: RunSuite, pytester: pytest.Pytester) -> None:
    """One scenario run: green as it is; with --require-complete the run fails, and so does conformance::run[require-complete]."""
    plain, required = pytester.path / "plain.xml", pytester.path / "required.xml"
    run_suite(*ONE_SCENARIO, "--junitxml", str(plain)).assert_outcomes(passed=1)
    assert run_cases(plain) == []
    result = run_suite(*ONE_SCENARIO, "--require-complete", "--junitxml", str(required))
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == 1
    (case,) = run_cases(required)
    assert case.id == "conformance::run[require-complete]" and case.failed and "not judged (--require-complete)" in case.message


def test_a_strict_or_expired_baseline_is_a_failing_case(run_suite: RunSuite, pytester: pytest.Pytester) -> None:
    """An entry that matched nothing under --strict-baseline, and an expired one, each fail a case of their own."""
    entry = {"promise": "400 missing_api_token", "check": "status and code", "status": 401, "code": "missing_api_token", "reason": "TICKET-1"}
    baseline = pytester.path / "baseline.yaml"
    baseline.write_text(yaml.safe_dump([{**entry, "expires": "2999-12-31"}, {**entry, "status": 403, "expires": "2020-01-01"}]),
                        encoding="utf-8")
    junit = pytester.path / "junit.xml"
    result = run_suite(*ONE_SCENARIO, "--baseline", str(baseline), "--strict-baseline", "--junitxml", str(junit))
    result.assert_outcomes(passed=1, failed=2)
    cases = {case.id: case for case in run_cases(junit)}
    assert set(cases) == {"conformance::run[strict-baseline]", "conformance::run[baseline-expired]"}
    assert "matched no finding" in cases["conformance::run[strict-baseline]"].message
    assert "expired on 2020-01-01" in cases["conformance::run[baseline-expired]"].message


def test_on_xdist_the_controller_reports_each_case_once(run_pytest: RunPytest, tmp_path: Path) -> None:
    """Two workers: the controller judges the merged run and reports the promise's case once; the workers none."""
    junit = tmp_path / "junit.xml"
    done = run_pytest(*SCENARIOS, "-n", "2", "--mock-mutant", HEADER_MUTANT, "--junitxml", junit)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert [case.id for case in junit_cases(junit) if case.failed] == [f"conformance::promise[{HEADER_PROMISE}]"]
    assert done.stdout.strip().splitlines()[-1].strip("= ").startswith("1 failed, ")


def fixtures_with(tmp_path: Path, rate_limit: dict[str, object] | None) -> Path:
    """The mock's target fixtures with this rate_limit section (None: without one)."""
    data = yaml.safe_load(MOCK_TARGET_YAML.read_text(encoding="utf-8"))
    data.pop("rate_limit", None)
    if rate_limit is not None:
        data["rate_limit"] = rate_limit
    path = tmp_path / "fixtures.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_an_opt_out_is_its_own_verdict_and_a_complete_run_passes(run_suite: RunSuite, pytester: pytest.Pytester) -> None:
    """rate_limit.provoke: false on a correct server, as the README's CI job runs it: exit 0, no failing case, the 429 opted out everywhere."""
    fixtures = fixtures_with(pytester.path, {"provoke": False})
    junit, markdown, report = pytester.path / "junit.xml", pytester.path / "report.md", pytester.path / "report.json"
    # Every test of the suite runs (completeness is over all of them), each property at 5 examples: how many it draws is
    # not what is judged here, and each promise is judged (or opted out) all the same.
    result = run_suite("--pyargs", "conformance", "--target-fixtures", str(fixtures), "--conformance-max-examples", "5",
                       "--require-complete", "--strict-baseline", "--junitxml", str(junit),
                       "--conformance-report", str(markdown), "--conformance-report", str(report))
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert result.parseoutcomes()["skipped"] == 1 and "failed" not in result.parseoutcomes()
    result.stdout.fnmatch_lines(["opted out * 429 rate_limit_reached: not run, as the target fixtures say (rate_limit.provoke: false)"])
    assert not any(case.failed for case in junit_cases(junit))
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["status"] == "passed" and data["complete"] and data["not_judged"] == []
    assert data["opted_out"] == [{"promise": "429 rate_limit_reached", "reason": "not run, as the target fixtures say (rate_limit.provoke: false)"}]
    assert {p["id"]: p["verdict"] for p in data["promises"]}["429 rate_limit_reached"] == "opted out"
    text = markdown.read_text(encoding="utf-8")
    assert "| 429 rate_limit_reached | opted out |" in text and "## Opted out" in text and "## Not judged" not in text


@pytest.mark.parametrize(("rate_limit", "counted"), [({"provoke": False}, False), ({}, True), (None, True)],
                         ids=["provoke-false", "no-provoke-key", "no-rate-limit-section"])
def test_only_an_explicit_opt_out_is_excused_by_require_complete(run_suite: RunSuite, pytester: pytest.Pytester,
                                                                  rate_limit: dict[str, object] | None, counted: bool) -> None:
    """An absent key is an accident (not provoked, counted by --require-complete); only `provoke: false` is a choice."""
    fixtures = fixtures_with(pytester.path, rate_limit)
    result = run_suite(*SCENARIOS, "-k", "test_rate_limit_reached", "--target-fixtures", str(fixtures), "--require-complete")
    output = result.stdout.str()
    assert result.ret == 1  # the other promises were deselected
    assert ("429 rate_limit_reached not provoked" in output) is counted
    assert ("opted out 429 rate_limit_reached" in unpadded(output)) is not counted


def test_the_runner_counts_a_catch_only_from_junit() -> None:
    """A run that fails (exit 1) with no failing JUnit case is an error, not a catch, whatever its conformance report says."""
    silent = runner.JUnitSummary(56, [], None)
    assert runner.classify(runner.Run("request-id-empty"), 1, silent) == "error"
    spoken = runner.JUnitSummary(57, [f"conformance::promise[{HEADER_PROMISE}]"], 1.0)
    assert runner.classify(runner.Run("request-id-empty"), 1, spoken) == "caught"


# Mutants whose deviation no test for its promise saw (measured with `python -m conformance.tools.mutation --live-sample 0 --max-examples 10`):
# the long id's 500 is seen by a 404 scenario, and the 429's mistyped detail was charged to the response shape before it was its own.
SEEN_ELSEWHERE = ("500-on-long-id", "429-total-permitted-string", "rate-limit-remaining-counts-up")
MATRIX_EXAMPLES = "10"  # as tests/test_mutants.py runs the matrix


@pytest.mark.parametrize("mutant", SEEN_ELSEWHERE)
def test_a_mutant_fails_a_junit_case_naming_each_promise_it_breaks(run_suite: RunSuite, pytester: pytest.Pytester, mutant: str) -> None:
    """The whole suite in process against the mutant: every promise it breaks is charged by a failing JUnit case."""
    junit = pytester.path / "junit.xml"
    result = run_suite("--pyargs", "conformance", "--mock-mutant", mutant, "--conformance-max-examples", MATRIX_EXAMPLES,
                       "--junitxml", str(junit))
    assert result.ret == 1, result.stdout.str()[-3000:]
    charged = {promise for case in junit_cases(junit) if case.failed for promise in case.says("charged promise")}
    breaks = set(runner.Run(mutant).breaks)
    assert breaks <= charged, f"{mutant} breaks {sorted(breaks)}; failing JUnit cases charge {sorted(charged)}\n{result.stdout.str()[-3000:]}"


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["alone", "xdist"])
def test_a_setup_mistake_is_one_error_case_and_a_setup_error_report(pytester: pytest.Pytester, run_suite: RunSuite, served_mock: ServedMock,
                                                                    workers: tuple[str, ...], pycache_dir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The preflight refusing the setup (a without_scope token that is the valid one) stops the run with exit 6 before any test;
    JUnit has one error, run[setup], naming the problem; the report says setup error and lists it; no completeness case blames
    the target. Under xdist too: the controller's own preflight stops the run, not a worker crashing under it."""
    fixtures = yaml.safe_load(MOCK_TARGET_YAML.read_text(encoding="utf-8"))
    fixtures["credentials"]["without_scope"] = fixtures["credentials"]["valid"]
    path = pytester.path / "same-secret.yaml"
    path.write_text(yaml.safe_dump(fixtures), encoding="utf-8")
    junit, report = pytester.path / "junit.xml", pytester.path / "report.json"
    # xdist's workers are processes of their own: that run is one (the controller's preflight is what it checks), on the
    # session's bytecode and hypothesis caches as every child run (without them each of its processes rebuilds both).
    if workers:
        cached = child_env(pycache_dir)
        monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", cached["HYPOTHESIS_STORAGE_DIRECTORY"])
        monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    run = pytester.runpytest_subprocess if workers else run_suite
    result = run("--pyargs", "conformance", "-p", "no:cacheprovider", *workers, "--target-url", served_mock.base_url,
                 "--target-fixtures", str(path), "--require-complete", "--junitxml", str(junit), "--conformance-report", str(report))
    assert result.ret == 6, result.stdout.str()[-3000:]
    assert "INTERNALERROR" not in run_output(result)
    result.stdout.fnmatch_lines(["*1 error in *"])
    [case] = junit_cases(junit)
    assert case.id == "conformance::run[setup]" and case.failed and "same secret as credentials.valid" in case.message
    assert ET.parse(junit).getroot().find(".//error") is not None
    written = json.loads(report.read_text(encoding="utf-8"))
    assert written["status"] == "setup error" and written["not_judged"] == []
    assert any("credentials.without_scope is the same secret" in problem for problem in written["setup_problems"])
    assert fixtures["credentials"]["valid"] not in junit.read_text(encoding="utf-8") + report.read_text(encoding="utf-8")


@pytest.mark.usefixtures("suite_imports_warm")
def test_an_interrupted_run_is_an_error_case(pytester: pytest.Pytester) -> None:
    """A run interrupted part-way (Ctrl-C or SIGTERM) ends with an error in JUnit saying its verdicts are partial, counted as
    `interrupted` in the last line."""
    pytester.makepyfile(interrupter="""
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    if "invalid-token" in item.nodeid:
        raise KeyboardInterrupt
""")
    pytester.syspathinsert()
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_inprocess(*SCENARIOS, "-p", "interrupter", "--junitxml", str(junit), no_reraise_ctrlc=True)
    assert result.ret == 2
    cases = {case.id: case for case in run_cases(junit)}
    assert cases["conformance::run[interrupted]"].failed and "partial" in cases["conformance::run[interrupted]"].message
    assert ET.parse(junit).getroot().find(".//error") is not None
    result.stdout.fnmatch_lines(["*passed, 1 interrupted in *"])


# Two Ctrl-Cs 50 ms apart while a test holds an IP; cleanup takes a while (a live target's requests do), so the second lands in it.
DOUBLE_CTRL_C = """
import os
import signal
import threading
import time

from conformance.gate.ledger import AllocationLedger
from conformance.wire import api

# Started as a background job of a non-interactive shell, the project's tests (and so this child) may have SIGINT ignored;
# a terminal's Ctrl-C reaches a run with Python's own handler, so this one gets it too.
signal.signal(signal.SIGINT, signal.default_int_handler)
real_allocate, real_restore = api.allocate, AllocationLedger.restore


def ctrl_c_twice():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)


def allocate(*args, **kwargs):
    response = real_allocate(*args, **kwargs)
    threading.Thread(target=ctrl_c_twice).start()
    time.sleep(60)
    return response


def restore(self, *args, **kwargs):
    time.sleep(0.5)
    return real_restore(self, *args, **kwargs)


api.allocate = allocate
AllocationLedger.restore = restore
"""


def test_a_double_ctrl_c_tells_one_story(tmp_path: Path, pycache_dir: Path) -> None:
    """Two SIGINTs 50 ms apart, the second during cleanup: exit 2, no traceback, the last line and JUnit and the report all
    say interrupted, and cleanup still put the IP back (no rate window to wait for on the mock)."""
    (tmp_path / "double_ctrl_c.py").write_text(DOUBLE_CTRL_C, encoding="utf-8")
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "double_ctrl_c", *SCENARIOS[:2], "-k", "test_allocate_free_ip and id",
               "--junitxml", str(junit), "--conformance-report", str(report)]
    done = subprocess.run(command, cwd=tmp_path, env=child_env(pycache_dir, {"PYTHONPATH": str(tmp_path)}), capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.INTERRUPTED, output[-3000:]
    assert "Traceback" not in output and "Error" not in done.stderr, output[-3000:]
    assert ", 1 interrupted in " in done.stdout.strip().splitlines()[-1], output[-3000:]
    written = json.loads(report.read_text(encoding="utf-8"))
    assert written["interrupted"] is True and written["status"] == "interrupted" and written["passed"] is False
    assert {promise["id"]: promise["verdict"] for promise in written["promises"]}["cleanup"] == "conforms"
    cases = {case.id: case for case in run_cases(junit)}
    assert list(cases) == ["conformance::run[interrupted]"] and cases["conformance::run[interrupted]"].failed
    assert ET.parse(junit).getroot().find(".//error") is not None
