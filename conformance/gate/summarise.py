"""The pure summary step: what a run did (outcomes, findings, what the baseline and the preflight said) → its Summary.

No pytest, no files, no clock but the one the caller passes: the reporter gathers the facts and writes what this returns,
and tests/test_summarise.py builds the facts by hand.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.contract.findings import Finding
from conformance.contract.outcomes import Verdict
from conformance.contract.promises import PROMISES, Promise, PromiseVerdict, TestOutcome, verdict_of
from conformance.gate.baseline import Review
from conformance.gate.summary import Problem, Summary


@dataclass(frozen=True)
class RunFacts:
    """Everything the summary is made from, gathered once the run (and its cleanup) is over."""

    target: str
    outcomes: Sequence[TestOutcome]
    findings: Sequence[Finding]
    # How often each promise's checks ran to the end and found nothing.
    reached: Mapping[str, int] = field(default_factory=dict)
    review: Review | None = None
    # What the baseline's review found that fails the run (expired, and with --strict-baseline unmatched, entries), and notes.
    problems: Sequence[Problem] = ()
    notes: Sequence[str] = ()
    interrupted: bool = False
    # What the preflight found wrong with the setup: nothing was run, and what was not judged is its consequence.
    setup_problems: Sequence[str] = ()
    # Why the run stopped before its end (exit 4): the target stopped answering; a stopped run is not also an interrupted one.
    stopped: str | None = None
    machines_from: str | None = None
    require_complete: bool = False
    live: bool = False
    requests: dict[str, Any] | None = None
    wire: dict[str, Any] | None = None
    wire_line: str | None = None
    network: dict[str, Any] | None = None
    network_line: str | None = None
    shared_token: Sequence[str] = ()
    generated_at: str | None = None
    promises: Sequence[Promise] = PROMISES


def not_judged(verdicts: Sequence[PromiseVerdict], live: bool) -> list[PromiseVerdict]:
    """Promises the run did not judge; neither what the target fixtures opted out of, nor, on a live target, what no live target can
    provoke (maintenance) is counted."""
    return [v for v in verdicts if not v.judged and v.verdict != Verdict.OPTED_OUT and (v.promise.live_provokable or not live)]


def not_judged_text(verdict: PromiseVerdict) -> str:
    """A promise a complete run lacks, and, where the target fixtures cannot provoke it, the key to set and the opt-out."""
    how = verdict.promise.to_provoke() if verdict.verdict == Verdict.NOT_PROVOKED else ""
    return f"{verdict.promise.id} {verdict.verdict}" + (f" ({how})" if how else "")


def summarise(facts: RunFacts) -> Summary:
    """One verdict per promise, what was not judged, and what fails the run besides a promise."""
    verdicts = [verdict_of(promise, facts.outcomes, facts.findings, facts.reached.get(promise.id, 0)) for promise in facts.promises]
    missing = [] if facts.setup_problems else not_judged(verdicts, facts.live)
    problems = list(facts.problems)
    if facts.require_complete and missing:
        problems.append(Problem("require-complete", f"{len(missing)} promise(s) not judged (--require-complete): "
                                + "; ".join(not_judged_text(v) for v in missing)))
    stamp = {"generated_at": facts.generated_at} if facts.generated_at is not None else {}
    return Summary(
        target=facts.target,
        verdicts=verdicts,
        unmapped=[outcome for outcome in facts.outcomes if not outcome.promises],
        review=facts.review,
        problems=problems,
        notes=list(facts.notes),
        requests=facts.requests,
        findings=sorted(facts.findings, key=lambda f: (f.signature.promise, -f.count)),
        not_judged=missing,
        interrupted=facts.interrupted and not facts.setup_problems and facts.stopped is None,
        setup_problems=list(facts.setup_problems),
        stopped=facts.stopped,
        machines_from=facts.machines_from,
        wire=facts.wire,
        wire_line=facts.wire_line,
        network=facts.network,
        network_line=facts.network_line,
        shared_token=list(facts.shared_token),
        **stamp,
    )
