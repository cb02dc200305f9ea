"""The end-of-run summary: verdicts, findings and completeness, in terminal, Markdown and JSON forms (docs/report-format.md)."""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.contract.findings import Finding
from conformance.contract.promises import (
    CONFORMS,
    FAILS,
    KNOWN_DEVIATION,
    NOT_JUDGED_NETWORK,
    NOT_REACHED,
    OPTED_OUT,
    PromiseVerdict,
    TestOutcome,
)
from conformance.gate.baseline import Review
from conformance.setup.redaction import REDACT

SCHEMA_VERSION = 2
COLOURS: dict[str, dict[str, bool]] = {FAILS: {"red": True, "bold": True}, CONFORMS: {"green": True}, KNOWN_DEVIATION: {"yellow": True},
                                       NOT_REACHED: {"yellow": True}, NOT_JUDGED_NETWORK: {"yellow": True}}
EXAMPLE_LINES = 14


@dataclass(frozen=True)
class Problem:
    """What fails the run besides a promise: the run-level check it comes from (its JUnit case, run[<check>]) and what to do."""

    check: str
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class Summary:
    """Everything the end-of-run summary says, in every format."""

    target: str
    verdicts: list[PromiseVerdict]
    unmapped: list[TestOutcome]
    review: Review | None
    problems: list[Problem]
    notes: list[str]
    requests: dict[str, Any] | None
    findings: list[Finding] = field(default_factory=list)
    not_judged: list[PromiseVerdict] = field(default_factory=list)
    interrupted: bool = False
    # What the preflight found wrong with the setup: the run stopped before any test (exit 6), and nothing was judged.
    setup_problems: list[str] = field(default_factory=list)
    # Why the run stopped before its end (exit 4): the target stopped answering in the middle of it.
    stopped: str | None = None
    wire: dict[str, Any] | None = None
    wire_line: str | None = None
    # What the network did to the requests (live runs, or any run that retried): counts, and one line for a reader.
    network: dict[str, Any] | None = None
    network_line: str | None = None
    # What pacing saw of the token's other clients (a shared token: never a finding by itself).
    shared_token: list[str] = field(default_factory=list)
    # Where the run learnt each interface's virtual machine (live, from the preflight): the interface read, or allocate_ip's 200s.
    machines_from: str | None = None
    generated_at: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))

    @property
    def judged(self) -> bool:
        """Whether any test spoke for a promise, or any check ran (a run of other tests has nothing to summarise)."""
        return any(verdict.tests or verdict.judged for verdict in self.verdicts)

    @property
    def complete(self) -> bool:
        """Every promise judged (or opted out of by the target fixtures), and the run not interrupted."""
        return not self.not_judged and not self.interrupted

    @property
    def opted_out(self) -> list[PromiseVerdict]:
        """The promises the target fixtures chose not to run (e.g. `rate_limit.provoke: false`)."""
        return [verdict for verdict in self.verdicts if verdict.verdict == OPTED_OUT]

    @property
    def passed(self) -> bool:
        """No promise fails, no problem (baseline, --require-complete), the setup was usable and the run was not interrupted."""
        return (not self.interrupted and not self.setup_problems and not self.problems and self.stopped is None
                and all(verdict.verdict != FAILS for verdict in self.verdicts))

    @property
    def status(self) -> str:
        """passed, failed, incomplete (passed what it judged, but not everything), interrupted, stopped (the target stopped answering),
        or setup error (nothing was run)."""
        if self.setup_problems:
            return "setup error"
        if self.stopped is not None:
            return "stopped"
        if self.interrupted:
            return "interrupted"
        if not self.passed:
            return "failed"
        return "passed" if self.complete else "incomplete"

    def unexcused(self) -> list[Finding]:
        """The findings that fail the run."""
        return [finding for finding in self.findings if finding.excused_by is None]


def detail(verdict: PromiseVerdict) -> str:
    """One line on why a promise got its verdict."""
    if verdict.verdict == FAILS:
        titles = list(dict.fromkeys(f.title for f in verdict.findings if f.excused_by is None))
        return f"{verdict.reason}: " + "; ".join(titles[:3]) + (f" (+{len(titles) - 3} more)" if len(titles) > 3 else "")
    return verdict.reason


EXAMPLE_HEADING = "  example:"


def finding_lines(finding: Finding) -> list[str]:
    """A finding for a reader: promise, expected, received, how often and where, one example exchange and its reproduction."""
    signature = finding.signature
    where = f"{signature.status} {signature.code or ''}".strip() if signature.status is not None else "no response"
    lines = [
        f"{signature.promise} · {signature.check} · {where} · seen {finding.count}x in {', '.join(finding.tests[:3])}"
        + (f" (+{len(finding.tests) - 3} tests)" if len(finding.tests) > 3 else ""),
        f"  expected: {finding.expected}",
        f"  received: {finding.received}",
    ]
    if finding.excused_by:
        lines.append(f"  known deviation, excused by baseline entry {finding.excused_by}")
    example = finding.example.splitlines()
    if example:
        lines += [EXAMPLE_HEADING, *(f"    {line}" for line in example[:EXAMPLE_LINES])]
    return lines


def summary_json(summary: Summary) -> dict[str, Any]:
    """The report as JSON, schema_version 2 (docs/report-format.md)."""
    base = summary.review
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": summary.generated_at,
        "target": summary.target,
        "status": summary.status,
        "passed": summary.passed,
        "complete": summary.complete,
        "interrupted": summary.interrupted,
        "stopped": summary.stopped,
        "setup_problems": summary.setup_problems,
        "not_judged": [{"promise": v.promise.id, "verdict": v.verdict, "reason": v.reason} for v in summary.not_judged],
        "opted_out": [{"promise": v.promise.id, "reason": v.reason} for v in summary.opted_out],
        "promises": [
            {
                "id": verdict.promise.id,
                "description": verdict.promise.description,
                "needs": verdict.promise.needs,
                "verdict": verdict.verdict,
                "detail": detail(verdict),
                "findings": len(verdict.findings),
                "tests": [{"test": name, "outcome": outcome, "reason": reason} for name, outcome, reason in verdict.tests],
            }
            for verdict in summary.verdicts
        ],
        "findings": [finding.as_dict() for finding in summary.findings],
        "unmapped_tests": [{"test": o.name, "outcome": o.outcome, "reason": o.reason} for o in summary.unmapped],
        "baseline": None if base is None else {
            "used": [entry.label for entry in base.used],
            "unmatched": [entry.label for entry in base.unmatched],
            "expired": [{"entry": entry.label, "expires": str(entry.expires)} for entry in base.expired],
        },
        "problems": [problem.text for problem in summary.problems],
        "notes": summary.notes,
        "requests": summary.requests,
        "target_showed": summary.wire,
        "network": None if summary.network is None else {**summary.network, "line": summary.network_line},
        "shared_token": summary.shared_token,
        "machines_from": summary.machines_from,
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(summary: Summary) -> str:
    """The report as Markdown: the verdict table, the findings with an example each, completeness, problems and requests."""
    lines = [
        "# allocate_ip conformance",
        "",
        f"Target: {summary.target} · {summary.generated_at} · **{summary.status}**",
        "",
        *([f"The target showed: {summary.wire_line}", ""] if summary.wire_line else []),
        *([f"Network: {summary.network_line}", ""] if summary.network_line else []),
        *(line for note in summary.shared_token for line in (f"Shared token: {note}", "")),
        *([f"Interface virtual machines from {summary.machines_from}", ""] if summary.machines_from else []),
        "| Promise | Verdict | Detail |",
        "| --- | --- | --- |",
    ]
    for verdict in summary.verdicts:
        shown = f"**{verdict.verdict}**" if verdict.verdict == FAILS else verdict.verdict
        lines.append(f"| {_cell(verdict.promise.id)} | {shown} | {_cell(detail(verdict))} |")
    if summary.findings:
        lines += ["", "## Findings", ""]
        for finding in summary.findings:
            head, *rest = finding_lines(finding)
            lines += [f"### {head}", "", "```", *(line.removeprefix("  ") for line in rest), "```", ""]
    if summary.not_judged:
        lines += ["", "## Not judged", "", *(f"- {_cell(v.promise.id)}: {v.verdict} ({_cell(v.reason)})" for v in summary.not_judged)]
    if summary.opted_out:
        lines += ["", "## Opted out", "", *(f"- {_cell(v.promise.id)}: {_cell(v.reason)}" for v in summary.opted_out)]
    if summary.unmapped:
        lines += ["", "Tests declaring no promise: " + ", ".join(f"`{o.name}` ({o.outcome})" for o in summary.unmapped)]
    if summary.stopped is not None:
        lines += ["", "## Stopped", "", f"{_cell(summary.stopped)}: the run stopped there (exit 4); its verdicts are partial."]
    for title, items in (("Setup problems (no test was run; fix the setup, exit 6)", summary.setup_problems),
                         ("Problems", [problem.text for problem in summary.problems]), ("Notes", summary.notes)):
        if items:
            lines += ["", f"## {title}", "", *(f"- {_cell(item)}" for item in items)]
    if summary.requests is not None:
        lines += ["", f"## Requests sent: {summary.requests['sent']}, {besides_tests(summary.requests)}", "", "| Status | Count |", "| --- | --- |"]
        lines += [f"| {status} | {count} |" for status, count in summary.requests["by_status"].items()]
    return "\n".join(lines) + "\n"


def write_report(path: Path, summary: Summary) -> None:
    """Write the summary as .md or .json, secrets redacted."""
    text = json.dumps(summary_json(summary), indent=2) + "\n" if path.suffix == ".json" else summary_markdown(summary)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(REDACT(text), encoding="utf-8")


def besides_tests(requests: dict[str, Any]) -> str:
    """The requests sent besides the tests': the preflight's (one per xdist process), the xdist controller's end-of-run check, and
    the sum of all, which is what the target received."""
    preflight, preflights, end = requests.get("preflight", 0), requests.get("preflights", 1), requests.get("end_of_run", 0)
    text = f"plus {preflight} by {preflights} preflights (the xdist controller's and each worker's)" if preflights > 1 else \
        f"plus {preflight} by the preflight"
    if end:
        text += f", plus {end} by the end-of-run check after every worker"
    if preflights > 1 or end:
        text += f": {requests.get('total', requests['sent'] + preflight + end)} in all"
    return text


def terminal_lines(summary: Summary) -> list[tuple[str, dict[str, bool]]]:
    """The terminal's lines and their markup: one per promise, the findings, what was not judged, requests, notes, problems."""
    lines = [(f"{verdict.verdict:<16} {verdict.promise.id}: {detail(verdict)}", COLOURS.get(verdict.verdict, {})) for verdict in summary.verdicts]
    for finding in summary.findings:
        head, *rest = finding_lines(finding)
        colour = {"yellow": True} if finding.excused_by else {"red": True}
        lines.append((f"finding: {head}", colour))
        # The terminal says what was expected and received (and any baseline excuse); the example is the report's.
        shown = rest[:rest.index(EXAMPLE_HEADING)] if EXAMPLE_HEADING in rest else rest
        lines += [(line, {}) for line in shown]
    if summary.unmapped:
        lines.append(("tests declaring no promise: " + ", ".join(f"{o.name} ({o.outcome})" for o in summary.unmapped), {}))
    if summary.wire_line:
        lines.append((f"the target showed: {summary.wire_line}", {}))
    if summary.machines_from:
        lines.append((f"interface virtual machines from {summary.machines_from}", {}))
    if summary.requests is not None:
        by_status = ", ".join(f"{status}: {count}" for status, count in summary.requests["by_status"].items())
        throttled = summary.requests.get("throttled", 0)
        waited = f"; {throttled} paced request(s) got a 429 and were retried after a wait" if throttled else ""
        lines.append((f"requests sent: {summary.requests['sent']} ({by_status}), {besides_tests(summary.requests)}{waited}", {}))
    if summary.network_line:
        troubled = bool(summary.network and (summary.network["failed_twice"] or summary.network["unanswered"]))
        lines.append((f"network: {summary.network_line}", {"yellow": True} if troubled else {}))
    lines += [(f"shared token: {note}", {"yellow": True}) for note in summary.shared_token]
    if summary.setup_problems:
        lines.append((f"the setup is wrong ({len(summary.setup_problems)} problem(s)): no test was run, nothing was judged (exit 6)",
                      {"red": True, "bold": True}))
    elif summary.stopped is not None:
        lines.append((f"the run stopped: {summary.stopped} (exit 4); its verdicts are partial and it is not a pass", {"red": True, "bold": True}))
    elif summary.interrupted:
        lines.append(("the run was interrupted: its verdicts are partial and it is not a pass", {"red": True, "bold": True}))
    elif summary.not_judged:
        lines.append((f"incomplete: {len(summary.not_judged)} promise(s) not judged ({', '.join(v.promise.id for v in summary.not_judged)})",
                      {"yellow": True}))
    lines += [(note, {"yellow": True}) for note in summary.notes]
    lines += [(f"run fails: {problem.text}", {"red": True, "bold": True}) for problem in summary.problems]
    return lines
