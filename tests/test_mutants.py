"""The mutant catalogue and the mutation-score runner: every mutant is caught, the faithful mock stays clean."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import sampled

from conformance.contract.promises import BY_ID
from conformance.mock.app import ReferenceMock
from conformance.mock.mutants import MUTANTS, mock_class, mutant
from conformance.tools import mutation as runner

MIN_MUTANTS = 32
MATRIX_TIMEOUT = 3600.0
LIVE_EXAMPLES = 10
JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
  <testcase classname="conformance.test_scenarios" name="test_scenario[missing-token]" time="0.50"/>
  <testcase classname="conformance.test_scenarios" name="test_scenario[invalid-token]" time="0.25"><failure message="x"/></testcase>
  <testcase classname="conformance.test_scenarios" name="test_scenario[invalid-token]" time="0.05"><error message="teardown"/></testcase>
  <testcase classname="conformance.test_generated" name="test_stateful_allocation" time="1.00"><error message="y"/></testcase>
  <testcase classname="conformance.test_generated" name="test_rate_limit_headers" time="0.10"><skipped message="z"/></testcase>
</testsuite></testsuites>
"""


def test_catalogue_is_large_enough() -> None:
    """At least 32 mutants, and the faithful mock is not one of them."""
    assert len(MUTANTS) >= MIN_MUTANTS
    assert ReferenceMock not in MUTANTS.values()
    assert ReferenceMock.name == "faithful"


def test_descriptions_are_unique() -> None:
    """No two mutants claim the same deviation."""
    descriptions = [cls.description for cls in MUTANTS.values()]
    assert len(set(descriptions)) == len(descriptions)


@pytest.mark.parametrize("name", ["faithful", "Not-Kebab", "has space", sorted(MUTANTS)[0]])
def test_registering_a_bad_or_taken_name_is_refused(name: str) -> None:
    """The registry refuses a name that is taken, reserved or not kebab-case."""
    with pytest.raises(ValueError, match="mutant name"):
        mutant(name, "a deviation", ("response shape",))


def test_no_mutant_breaks_more_than_two_promises() -> None:
    """One deviation is charged to one promise, two at most (a 500 on malformed bytes is also a server error): the matrix holds each
    run to exactly its `breaks`, so a fault that reads as many regressions (one per error code) cannot hide there."""
    assert {name: cls.breaks for name, cls in MUTANTS.items() if len(cls.breaks) > 2} == {}
    assert MUTANTS["error-detail-null"].breaks == ("response shape",)


def test_registering_a_mutant_that_breaks_nothing_is_refused() -> None:
    """A mutant must say which promises it breaks: the matrix holds its runs to exactly those."""
    with pytest.raises(ValueError, match="must name the promises its deviation breaks"):
        mutant("breaks-nothing", "a deviation", ())


def test_mock_class_selects_the_faithful_mock_or_a_mutant() -> None:
    """None, "" and "faithful" are the reference mock; a name is its mutant."""
    assert mock_class(None) is mock_class("") is mock_class("faithful") is ReferenceMock
    name = sorted(MUTANTS)[0]
    assert mock_class(name) is MUTANTS[name]


def test_unknown_mutant_is_a_clear_error() -> None:
    """An unknown name is a ValueError that names it and lists the choices."""
    with pytest.raises(ValueError, match=r"unknown mutant 'nope': choose one of .*exclusivity-id-wins"):
        mock_class("nope")


def test_parse_junit(tmp_path: Path) -> None:
    """Failures and errors are failed ids, once each, in order; the first failure is seconds into the session."""
    report = tmp_path / "junit.xml"
    report.write_text(JUNIT, encoding="utf-8")
    summary = runner.parse_junit(report)
    assert summary.failed == ["test_scenarios::test_scenario[invalid-token]", "test_generated::test_stateful_allocation"]
    assert summary.tests == 4
    assert summary.first_failure == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("mutant_name", "returncode", "failed", "status"),
    [
        ("faithful", 0, [], "clean"),
        ("faithful", 1, ["t"], "false-alarm"),
        ("missing-token-401", 1, ["t"], "caught"),
        ("missing-token-401", 0, [], "missed"),
        ("missing-token-401", 2, ["t"], "error"),
        ("missing-token-401", 1, [], "error"),
        ("faithful", 4, [], "error"),
    ],
)
def test_classify(mutant_name: str, returncode: int, failed: list[str], status: str) -> None:
    """Only exit codes 0 and 1 with a report that agrees count; anything else is an error, never a catch."""
    summary = runner.JUnitSummary(len(failed), failed, 1.0 if failed else None)
    assert runner.classify(runner.Run(mutant_name), returncode, summary) == status


@pytest.mark.parametrize(
    ("failing", "full", "status"),
    [
        (["400 missing_api_token"], True, "caught"),
        (["400 missing_api_token", "response shape"], True, "misattributed"),
        (["response shape"], True, "misattributed"),
        (["response shape"], False, "caught"),
    ],
)
def test_attribution(failing: list[str], full: bool, status: str) -> None:
    """A full run's failing promises must be exactly those the mutant breaks; a --maxfail run is not judged on it."""
    assert runner.attributed(runner.Run("missing-token-401"), "caught", failing, full) == status
    assert runner.attributed(runner.Run("missing-token-401"), "missed", [], full) == "missed"


# Mutants whose deviation is one header or one part of a body's shape: they break exactly one promise, judged by checks.
HEADER_AND_SHAPE = ("request-id-empty", "errors-without-x-api-schema", "success-with-x-api-schema", "errors-text-html",
                    "200-missing-mac-address", "200-unwrapped", "200-network-as-string", "200-ip-item-missing-address",
                    "errors-unwrapped", "errors-without-rate-limit-headers", "200-without-rate-limit-headers")
MAX_MEAN_PROMISES = 1.5


def test_catalogue_says_what_each_deviation_breaks() -> None:
    """Each mutant names known promises it breaks; on average at most 1.5, a header or shape mutant exactly its own one.

    The matrix below holds each full in-process run to exactly these promises, so this table is what the runs measure.
    """
    for name, cls in MUTANTS.items():
        assert cls.breaks and set(cls.breaks) <= set(BY_ID), f"{name} breaks {cls.breaks}: not promises of the suite"
        assert len(set(cls.breaks)) == len(cls.breaks), name
    assert sum(len(cls.breaks) for cls in MUTANTS.values()) / len(MUTANTS) <= MAX_MEAN_PROMISES
    for name in HEADER_AND_SHAPE:
        (promise,) = MUTANTS[name].breaks
        assert BY_ID[promise].by_checks, f"{name} breaks {promise}, not a promise of the response checks"


def test_combined_mutants_break_what_their_parts_break() -> None:
    """`a,b` breaks the union of what a and b break."""
    combined = mock_class("missing-token-401,request-id-empty")
    assert combined.breaks == (*MUTANTS["missing-token-401"].breaks, *MUTANTS["request-id-empty"].breaks)


def test_a_run_without_report_is_an_error() -> None:
    """No JUnit report (pytest never got going) is an error."""
    assert runner.classify(runner.Run("missing-token-401"), 1, None) == "error"


def test_live_sample_is_deterministic_and_starts_with_the_hang() -> None:
    """The live sample is the same every time, led by the mutant that never answers."""
    names = list(MUTANTS)
    sample = runner.live_sample(names, 4)
    assert sample == runner.live_sample(list(reversed(names)), 4)
    assert sample[0] == "hang-on-allocate-by-address" and len(sample) == 4
    assert runner.live_sample(["missing-token-401"], 4) == ["missing-token-401"]


def test_plan_adds_a_live_control_only_with_a_live_sample() -> None:
    """The faithful mock runs in every mode that runs mutants."""
    assert runner.plan(["missing-token-401"], 0) == [runner.Run("faithful"), runner.Run("missing-token-401")]
    live = [run for run in runner.plan(["missing-token-401"], 1) if run.live]
    assert live == [runner.Run("faithful", live=True), runner.Run("missing-token-401", live=True)]


def test_pytest_command_is_what_a_user_types(tmp_path: Path) -> None:
    """`python -m pytest --pyargs conformance`, with the mutant in-process or the served mock's URL and shipped fixtures."""
    junit = tmp_path / "junit.xml"
    in_process = runner.pytest_command(runner.Run("missing-token-401"), junit, None)
    modules = runner.suite_modules()
    assert in_process[:4 + len(modules)] == [sys.executable, "-m", "pytest", "--pyargs", *modules]
    assert modules[:2] == ["conformance.test_scenarios", "conformance.test_concurrency"] and "conformance.test_generated" in modules
    assert in_process[-2:] == ["--mock-mutant", "missing-token-401"]
    assert "--mock-mutant" not in runner.pytest_command(runner.Run("faithful"), junit, None)
    live = runner.pytest_command(runner.Run("faithful", live=True), junit, "http://127.0.0.1:1/core/v1")
    fixtures = Path(live[live.index("--target-fixtures") + 1])
    assert fixtures.is_file() and fixtures.name == "mock-target.yaml"
    assert live[live.index("--target-url") + 1] == "http://127.0.0.1:1/core/v1" and "--mock-mutant" not in live


def test_default_pace_runs_as_a_user_does(tmp_path: Path) -> None:
    """--live-pace suite: no rate, budget or -k overrides (the 429 burst included), and only the live sample when asked."""
    run = runner.Run("missing-token-401", live=True, default_pace=True)
    command = runner.pytest_command(run, tmp_path / "junit.xml", "http://127.0.0.1:1/core/v1")
    assert "--max-rate" not in command and "--max-requests" not in command and "-k" not in command
    runs = runner.plan(["missing-token-401"], 1, default_pace=True, in_process=False)
    assert runs == [runner.Run("faithful", live=True, default_pace=True), run]


def test_a_live_run_that_leaves_an_ip_changed_must_name_it() -> None:
    """An IP the run left changed is fine only when the run's output names it (a cleanup failure does)."""
    free, held = runner.IPRef("ip_a", "192.0.2.1"), runner.IPRef("ip_b", "192.0.2.2")
    before = {free: None, held: "vm_x"}
    assert runner.left_changed(before, dict(before), "") == []
    moved = {free: "vm_y", held: "vm_x"}
    assert runner.left_changed(before, moved, "cleanup: could not restore: ip_a (192.0.2.1)") == []
    assert runner.left_changed(before, moved, "all passed") == ["ip_a was free, now vm_y"]


def test_child_environment_drops_the_callers_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """KATAPULT_* and PYTEST_ADDOPTS from the caller never reach a run (they would change its target)."""
    monkeypatch.setenv("KATAPULT_TARGET_URL", "https://api.staging.katapult.dev/core/v1")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x")
    environ = runner.child_environment(tmp_path)
    assert "KATAPULT_TARGET_URL" not in environ and "PYTEST_ADDOPTS" not in environ
    assert "PATH" in environ


def test_child_runs_read_the_installs_bytecode_unless_it_is_read_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A writable install's __pycache__ serves the runs (a cache of their own compiled every module afresh); a read-only one gets one."""
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    environ = runner.child_environment(tmp_path)
    assert "PYTHONPYCACHEPREFIX" not in environ and "PYTHONDONTWRITEBYTECODE" not in environ
    monkeypatch.setattr(runner.os, "access", lambda path, mode: False)
    assert runner.child_environment(tmp_path)["PYTHONPYCACHEPREFIX"] == str(tmp_path)


def test_unknown_only_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--only with an unknown name stops before running anything: one line naming it, exit 4 as for any bad option."""
    with pytest.raises(SystemExit) as stopped:
        runner.parse_args(["--only", "missing-token-401,nope"])
    assert stopped.value.code == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("katapult-conformance mutants: error: unknown mutant nope")


# The in-process runs are tests/test_matrix.py (in this process, with pytester); here the live sample, each a child process.
MATRIX = runner.plan(list(MUTANTS), runner.DEFAULT_LIVE_SAMPLE)
LIVE = [run for run in MATRIX if run.live]


def test_matrix_plan_covers_every_mutant_in_process_and_the_live_sample() -> None:
    """This module's live runs and tests/test_matrix.py's in-process ones are the whole matrix: every mutant in process, the live sample over HTTP."""
    in_process = {run.mutant for run in MATRIX if not run.live}
    live = {run.mutant for run in MATRIX if run.live}
    assert in_process == {"faithful", *MUTANTS}
    assert {"faithful", "hang-on-allocate-by-address", "check-then-act-allocator"} <= live and len(live) == 1 + runner.DEFAULT_LIVE_SAMPLE


# CI runs a third of the live sample (the faithful control first); `pytest -m nightly` runs the rest.
@pytest.mark.parametrize("run", sampled(LIVE, 3, [f"{run.mode}-{run.mutant}" for run in LIVE]))
def test_live_matrix_run_comes_out_as_it_should(run: runner.Run, pycache_dir: Path) -> None:
    """One live run of the matrix, over loopback HTTP (xdist spreads them over its workers): the faithful mock clean, a mutant caught."""
    # Live runs stop at their first failure (--maxfail 1) and draw LIVE_EXAMPLES per property: the served mock costs real
    # time, what is live-only here is the transport (a hang, an HTML or broken body, a race over sockets), and attribution
    # is held in process (tests/test_matrix.py).
    outcome = runner.execute(run, runner.child_environment(pycache_dir), MATRIX_TIMEOUT, maxfail=1, max_examples=LIVE_EXAMPLES)
    assert outcome.ok, f"{run.mode} {run.mutant}: {outcome.status} {outcome.failed[:3]}\n{outcome.detail}"


def test_matrix_command_line_scores_and_writes_json(tmp_path: Path, pycache_dir: Path) -> None:
    """`katapult-conformance mutants` runs the plan, prints the score and writes the JSON report (a mutant and its control, in-process)."""
    report = tmp_path / "score.json"
    # One example per property: what is checked is the command (its plan, score, report and jobs), not how well the runs
    # judge (tests/test_matrix.py holds that); the session's bytecode and hypothesis caches spare each run its rebuild.
    completed = subprocess.run(
        [sys.executable, "-m", "conformance.tools.cli", "mutants", "--only", "missing-token-401", "--live-sample", "0", "--jobs", "2",
         "--maxfail", "1", "--conformance-max-examples", "1", "--conformance-report", str(report)],
        capture_output=True, text=True, timeout=MATRIX_TIMEOUT, check=False, cwd=tmp_path, env=runner.child_environment(pycache_dir),
    )
    assert report.exists(), completed.stdout[-3000:] + completed.stderr[-3000:]
    score = json.loads(report.read_text(encoding="utf-8"))
    statuses = {(run["mutant"], run["mode"]): run["status"] for run in score["runs"]}
    assert statuses == {("faithful", "in-process"): "clean", ("missing-token-401", "in-process"): "caught"}, completed.stdout[-3000:]
    assert completed.returncode == 0 and score["ok"] and score["jobs"] == 2
    assert "in-process: 1/1 mutants caught, faithful clean" in completed.stdout


@pytest.mark.parametrize(
    ("failing", "live", "status"),
    [
        (["200 semantics"], True, "caught"),
        (["200 semantics", "cleanup"], True, "caught"),
        (["200 semantics", "response shape"], True, "misattributed"),
        (["200 semantics"], False, "misattributed"),
    ],
)
def test_a_live_run_may_show_some_of_the_named_promises_only(failing: list[str], live: bool, status: str) -> None:
    """Live runs draw a share of the examples: failing some of the mutant's promises and no other is its right attribution
    there (in process, exactly its promises)."""
    run = runner.Run("allocates-to-other-interface", live=live)
    assert run.breaks == ("200 semantics", "cleanup")
    assert runner.attributed(run, "caught", failing, True) == status


def test_the_live_sample_leaves_out_what_no_live_target_can_show() -> None:
    """maintenance-ignored deviates only in maintenance, which no live target can be switched to: never sampled live, even with all."""
    assert not runner.live_provokable("maintenance-ignored") and runner.live_provokable("missing-token-401")
    every = runner.live_sample(list(MUTANTS), len(MUTANTS))
    assert "maintenance-ignored" not in every and len(every) == len(MUTANTS) - 1
