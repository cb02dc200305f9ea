"""The pure summary step, fed by hand: outcomes and findings in, one verdict per promise and the run's status out (no pytest run)."""
from __future__ import annotations

import dataclasses
from typing import Any

from conformance.contract.findings import Finding, Signature
from conformance.contract.ids import (
    CLEANUP,
    INVALID_CAPABILITIES_TOKEN,
    MUTUAL_EXCLUSIVITY,
    ORDER_OF_CHECKS,
    RATE_LIMIT_REACHED,
    RESPONSE_SHAPE,
    SCOPE_NOT_GRANTED,
    SERVICE_UNAVAILABLE,
    SHAPE_200,
)
from conformance.contract.outcomes import Cause, Outcome, Verdict
from conformance.contract.promises import BY_ID, TestOutcome
from conformance.gate.summarise import RunFacts, summarise
from conformance.gate.summary import Problem, Summary, summary_json

TARGET = "https://api.staging.example/core/v1"
WHEN = "2025-01-01T00:00:00+00:00"


def finding(promise: str, excused_by: str | None = None) -> Finding:
    """One deviation of a promise, excused by a baseline entry or not."""
    found = Finding(Signature(promise, "status and code", 404, "ip_address_not_found", "404 ip_address_not_found"), "Expected 400",
                    "400 invalid_argument", "404 ip_address_not_found", "Sent: POST ...", ["test_a"])
    found.excused_by = excused_by
    return found


def skipped(name: str, promise: str, cause: Cause | None, reason: str, setting: str | None = None) -> TestOutcome:
    """A test of one promise skipped for a cause."""
    return TestOutcome(name, (promise,), Outcome.SKIPPED, reason, cause=cause, opted_out=setting)


# One run with a promise of each verdict.
OUTCOMES = [
    TestOutcome("test_scenario[both-values]", (MUTUAL_EXCLUSIVITY,), Outcome.FAILED, "Expected 400", (MUTUAL_EXCLUSIVITY,)),
    TestOutcome("test_scenario[arguments-first]", (ORDER_OF_CHECKS,), Outcome.DEVIATION, "entry-1", (ORDER_OF_CHECKS,), "entry-1"),
    TestOutcome("test_allocate_free_ip[id]", (SHAPE_200,), reached=(SHAPE_200,)),
    skipped("test_rate_limit_reached", RATE_LIMIT_REACHED, Cause.OPTED_OUT, "opted out in the target fixtures (rate_limit.provoke: false)",
            "rate_limit.provoke: false"),
    skipped("test_scenario[scope-not-granted]", SCOPE_NOT_GRANTED, Cause.NOT_PROVOKED, "needs credentials.without_scope in the target fixtures"),
    skipped("test_scenario[invalid-capabilities]", INVALID_CAPABILITIES_TOKEN, Cause.NOT_RUN, "not run: the request budget of 60 is spent"),
    skipped("test_service_unavailable", SERVICE_UNAVAILABLE, Cause.NOT_REACHED, "not reached: builds on response shape, which already deviates"),
    TestOutcome("test_plain", ()),
]
FINDINGS = [finding(MUTUAL_EXCLUSIVITY), finding(ORDER_OF_CHECKS, excused_by="entry-1")]


BASE = RunFacts(target=TARGET, outcomes=OUTCOMES, findings=FINDINGS, reached={RESPONSE_SHAPE: 3}, generated_at=WHEN)


def run(**overrides: Any) -> Summary:
    """The summary of the run above, with some facts changed."""
    return summarise(dataclasses.replace(BASE, **overrides))


def verdicts(summary: Summary) -> dict[str, tuple[Verdict, str]]:
    """Each promise's verdict and reason."""
    return {verdict.promise.id: (verdict.verdict, verdict.reason) for verdict in summary.verdicts}


def test_each_verdict_from_outcomes_and_findings_built_by_hand() -> None:
    """fails, known deviation, conforms (by a test, by checks), opted out, not provoked, not run and not reached, each with its why."""
    found = verdicts(run())
    assert found[MUTUAL_EXCLUSIVITY] == (Verdict.FAILS, "1 deviation(s)")
    assert found[ORDER_OF_CHECKS] == (Verdict.KNOWN_DEVIATION, "entry-1")
    assert found[SHAPE_200] == (Verdict.CONFORMS, "1 test(s) judged it, no finding")
    assert found[RESPONSE_SHAPE] == (Verdict.CONFORMS, "checked by other tests (none of its own ran), no finding")
    assert found[RATE_LIMIT_REACHED] == (Verdict.OPTED_OUT, "not run, as the target fixtures say (rate_limit.provoke: false)")
    assert found[SCOPE_NOT_GRANTED] == (Verdict.NOT_PROVOKED, "needs credentials.without_scope in the target fixtures")
    assert found[INVALID_CAPABILITIES_TOKEN] == (Verdict.NOT_RUN, "the request budget of 60 is spent")
    assert found[SERVICE_UNAVAILABLE] == (Verdict.NOT_REACHED, "builds on response shape, which already deviates")
    # No test for it and no check reached it: a promise of a test is not run, one of the checks not reached.
    assert found[CLEANUP] == (Verdict.NOT_RUN, "no test for it ran (deselected, or the run stopped early)")
    assert verdicts(run())["X-Api-Schema on errors"] == (Verdict.NOT_REACHED, "no response in this run went through its checks")


def test_the_run_fails_on_an_unexcused_finding_and_lists_what_it_did_not_judge() -> None:
    """Failed; what was not judged is listed, what was opted out is not; the unmapped test is named; findings sorted by promise."""
    summary = run()
    assert summary.status == "failed" and not summary.passed and not summary.complete
    missing = {verdict.promise.id for verdict in summary.not_judged}
    assert {SCOPE_NOT_GRANTED, INVALID_CAPABILITIES_TOKEN, SERVICE_UNAVAILABLE, CLEANUP} <= missing and RATE_LIMIT_REACHED not in missing
    assert [verdict.promise.id for verdict in summary.opted_out] == [RATE_LIMIT_REACHED]
    assert [outcome.name for outcome in summary.unmapped] == ["test_plain"]
    assert [f.signature.promise for f in summary.findings] == sorted([MUTUAL_EXCLUSIVITY, ORDER_OF_CHECKS])
    assert summary.generated_at == WHEN and summary_json(summary)["status"] == "failed"


def test_a_known_deviation_alone_passes_and_require_complete_adds_its_problem() -> None:
    """Only the excused finding: passed but incomplete; --require-complete makes what is missing a problem of its own."""
    passing = [o for o in OUTCOMES if o.outcome != Outcome.FAILED]
    summary = run(outcomes=passing, findings=FINDINGS[1:])
    assert summary.passed and summary.status == "incomplete" and summary.problems == []
    strict = run(outcomes=passing, findings=FINDINGS[1:], require_complete=True)
    (problem,) = strict.problems
    assert problem.check == "require-complete" and f"{SCOPE_NOT_GRANTED} not provoked" in problem.text and strict.status == "failed"


def test_every_promise_judged_or_opted_out_is_complete() -> None:
    """Every promise reached by the checks, one opted out: passed and complete; on a live target maintenance is never counted missing."""
    reached = {promise_id: 1 for promise_id in BY_ID if promise_id not in (RATE_LIMIT_REACHED, SERVICE_UNAVAILABLE)}
    opted = [OUTCOMES[3]]
    assert run(outcomes=opted, findings=[], reached=reached, live=True).status == "passed"
    assert [v.promise.id for v in run(outcomes=opted, findings=[], reached=reached).not_judged] == [SERVICE_UNAVAILABLE]


def test_a_setup_the_preflight_refused_and_an_interrupted_run() -> None:
    """Setup problems: a setup error, nothing counted as not judged, not also interrupted; an interrupted run is never a pass."""
    refused = run(outcomes=[], findings=[], setup_problems=["credentials.valid is refused (403 invalid_api_token)"], interrupted=True)
    assert refused.status == "setup error" and refused.not_judged == [] and not refused.interrupted and not refused.passed
    stopped = run(outcomes=[], findings=[], reached={p: 1 for p in BY_ID}, interrupted=True)
    assert stopped.status == "interrupted" and not stopped.passed


def test_the_baseline_s_problems_and_notes_pass_through() -> None:
    """An expired entry fails the run; a note does not."""
    summary = run(outcomes=[], findings=[], reached={p: 1 for p in BY_ID}, problems=[Problem("baseline-expired", "entry x expired")],
                  notes=["baseline entry 'y' matched no finding"])
    assert summary.status == "failed" and [p.check for p in summary.problems] == ["baseline-expired"]
    assert summary.notes == ["baseline entry 'y' matched no finding"]
