"""The end-of-run summary: what it holds, and its terminal, Markdown and JSON forms."""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.baseline import Review
from conformance.promises import (
    CONFORMS,
    DEVIATION,
    FAILED,
    FAILS,
    KNOWN_DEVIATION,
    NOT_PROVOKED,
    PASSED,
    SKIPPED,
    PromiseVerdict,
    TestOutcome,
)
from conformance.redact import REDACT

SCHEMA_VERSION = 1
COLOURS: dict[str, dict[str, bool]] = {FAILS: {"red": True, "bold": True}, CONFORMS: {"green": True}, KNOWN_DEVIATION: {"yellow": True}}


@dataclass
class Summary:
    """Everything the end-of-run summary says, in every format."""

    target: str
    verdicts: list[PromiseVerdict]
    unmapped: list[TestOutcome]
    review: Review | None
    problems: list[str]
    notes: list[str]
    requests: dict[str, Any] | None
    wire: dict[str, Any] | None = None
    wire_line: str | None = None
    generated_at: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))

    @property
    def judged(self) -> bool:
        """Whether any test spoke for a promise (a run of other tests has nothing to summarise)."""
        return any(verdict.tests for verdict in self.verdicts)

    @property
    def passed(self) -> bool:
        """No promise fails and the baseline raised no problem."""
        return not self.problems and all(verdict.verdict != FAILS for verdict in self.verdicts)


def detail(verdict: PromiseVerdict) -> str:
    """One line on why a promise got its verdict."""
    if verdict.verdict == FAILS:
        return ", ".join(verdict.names(FAILED))
    if verdict.verdict == KNOWN_DEVIATION:
        return f"{'; '.join(verdict.reasons(DEVIATION))} ({', '.join(verdict.names(DEVIATION))})"
    if verdict.verdict == CONFORMS:
        skipped = len(verdict.names(SKIPPED))
        return f"{len(verdict.names(PASSED))} passed" + (f", {skipped} not provoked" if skipped else "")
    if verdict.verdict == NOT_PROVOKED:
        reasons = verdict.reasons(SKIPPED)
        return reasons[0] if reasons else f"needs {verdict.promise.needs}"
    return "no test for it ran"


def summary_json(summary: Summary) -> dict[str, Any]:
    """The report as JSON, schema_version 1 (docs/report-format.md).

    {"schema_version": 1, "generated_at": ISO-8601 UTC, "target": str, "passed": bool,
     "promises": [{"id", "description", "needs": fixture key | null, "verdict": "conforms" | "fails" | "not provoked"
                   | "known deviation" | "not run", "detail": str,
                   "tests": [{"test": name, "outcome": "passed" | "failed" | "skipped" | "known deviation", "reason": str}]}],
     "unmapped_tests": [{"test", "outcome", "reason"}],
     "baseline": null | {"known_deviations": [id], "fixed": [id], "expired": [{"id", "expires"}]},
     "problems": [str], "notes": [str],
     "requests": null | {"sent": int, "by_status": {"<status>": int}},   (requests: live targets only)
     "target_showed": null | {"body_generation": {str: int}, "request_id_format": {str: int}, "rate_limit_permitted": {str: int}}}
    """
    base = summary.review
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": summary.generated_at,
        "target": summary.target,
        "passed": summary.passed,
        "promises": [
            {
                "id": verdict.promise.id,
                "description": verdict.promise.description,
                "needs": verdict.promise.needs,
                "verdict": verdict.verdict,
                "detail": detail(verdict),
                "tests": [{"test": name, "outcome": outcome, "reason": reason} for name, outcome, reason in verdict.tests],
            }
            for verdict in summary.verdicts
        ],
        "unmapped_tests": [{"test": o.name, "outcome": o.outcome, "reason": o.reason} for o in summary.unmapped],
        "baseline": None if base is None else {
            "known_deviations": [entry.id for entry in base.used],
            "fixed": [entry.id for entry in base.fixed],
            "expired": [{"id": entry.id, "expires": str(entry.expires)} for entry in base.expired],
        },
        "problems": summary.problems,
        "notes": summary.notes,
        "requests": summary.requests,
        "target_showed": summary.wire,
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(summary: Summary) -> str:
    """The report as Markdown: a table of promises, then unmapped tests, baseline problems and requests."""
    lines = [
        "# allocate_ip conformance",
        "",
        f"Target: {summary.target} · {summary.generated_at} · **{'passed' if summary.passed else 'failed'}**",
        "",
        *([f"The target showed: {summary.wire_line}", ""] if summary.wire_line else []),
        "| Promise | Verdict | Detail |",
        "| --- | --- | --- |",
    ]
    for verdict in summary.verdicts:
        shown = f"**{verdict.verdict}**" if verdict.verdict == FAILS else verdict.verdict
        lines.append(f"| {_cell(verdict.promise.id)} | {shown} | {_cell(detail(verdict))} |")
    if summary.unmapped:
        lines += ["", "Tests declaring no promise: " + ", ".join(f"`{o.name}` ({o.outcome})" for o in summary.unmapped)]
    for title, items in (("Problems", summary.problems), ("Notes", summary.notes)):
        if items:
            lines += ["", f"## {title}", "", *(f"- {_cell(item)}" for item in items)]
    if summary.requests is not None:
        lines += ["", f"## Requests sent: {summary.requests['sent']}", "", "| Status | Count |", "| --- | --- |"]
        lines += [f"| {status} | {count} |" for status, count in summary.requests["by_status"].items()]
    return "\n".join(lines) + "\n"


def write_report(path: Path, summary: Summary) -> None:
    """Write the summary as .md or .json, secrets redacted."""
    text = json.dumps(summary_json(summary), indent=2) + "\n" if path.suffix == ".json" else summary_markdown(summary)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(REDACT(text), encoding="utf-8")


def terminal_lines(summary: Summary) -> list[tuple[str, dict[str, bool]]]:
    """The terminal's lines and their markup: one per promise, then unmapped tests, requests per status, notes, problems."""
    lines = [(f"{verdict.verdict:<16} {verdict.promise.id}: {detail(verdict)}", COLOURS.get(verdict.verdict, {})) for verdict in summary.verdicts]
    if summary.unmapped:
        lines.append(("tests declaring no promise: " + ", ".join(f"{o.name} ({o.outcome})" for o in summary.unmapped), {}))
    if summary.wire_line:
        lines.append((f"the target showed: {summary.wire_line}", {}))
    if summary.requests is not None:
        by_status = ", ".join(f"{status}: {count}" for status, count in summary.requests["by_status"].items())
        lines.append((f"requests sent: {summary.requests['sent']} ({by_status})", {}))
    lines += [(note, {"yellow": True}) for note in summary.notes]
    lines += [(f"run fails: {problem}", {"red": True, "bold": True}) for problem in summary.problems]
    return lines
