"""`katapult-conformance replay FILE...`: judge recorded traffic with the live suite's checks, sending nothing.

Exit 0 when every interaction of the fragment's operations conforms (or is a known deviation in --baseline), 1 otherwise,
2 on unusable arguments or files.
"""
from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance.contract.findings import FindingLog, RunContext
from conformance.contract.ids import ERROR_ENVELOPE
from conformance.contract.promises import BY_ID, KNOWN, verdict_of
from conformance.gate.baseline import BaselineError, load_baseline, review
from conformance.gate.summary import Problem, Summary, terminal_lines, write_report
from conformance.setup.command import FAILED, INTERRUPTED_OR_UNREADABLE, OK, USAGE, CommandParser, fail
from conformance.setup.redaction import REDACT
from conformance.tools.replay.judge import DEFAULT_BASE_PATH, JudgedExchange, judge_exchange
from conformance.tools.replay.recordings import Recorded, RecordingError, load_recordings

ENVELOPE_PROMISE = KNOWN[ERROR_ENVELOPE]
FAILURE_LINES = 8
REPORT_SUFFIXES = (".md", ".json")


def parser() -> argparse.ArgumentParser:
    """The replay command's arguments."""
    commands = CommandParser("replay", __doc__.splitlines()[0] if __doc__ else None, exits=(OK, FAILED, INTERRUPTED_OR_UNREADABLE, USAGE),
                             says={OK: "every mapped exchange conforms", FAILED: "an exchange does not conform",
                                   INTERRUPTED_OR_UNREADABLE: "a recording or the baseline could not be read"})
    commands.add_argument("files", nargs="+", type=Path, metavar="FILE",
                          help="go-vcr cassette (.yaml), HAR 1.2 (.har/.json) or JSON interaction list")
    commands.add_argument("--base-path", default=DEFAULT_BASE_PATH, help=f"API base path stripped from recorded paths (default {DEFAULT_BASE_PATH})")
    commands.add_argument("--judge-other-errors", action="store_true",
                          help="also judge error responses of other endpoints against the shared error envelope")
    commands.add_argument("--conformance-report", action="append", type=Path, default=[], metavar="PATH",
                          help="write the verdicts to PATH (.md or .json); may be given more than once")
    commands.add_argument("--baseline", type=Path, default=None, help="YAML file of accepted deviations, keyed on findings, as for `run --baseline`")
    commands.add_argument("-v", "--verbose", action="store_true", help="print each failure in full, not only its first lines")
    return commands


def print_failure(judged: JudgedExchange, full: bool) -> None:
    """Each finding an interaction added: the interaction, the finding's headline and its first lines."""
    for finding in judged.findings:
        lines = [line for line in finding.example.splitlines() if line.strip()]
        shown = lines if full else lines[:FAILURE_LINES]
        print(f"FAILED {judged.recorded.label} [{judged.operation}]: {finding.signature.promise}: {finding.title}")
        print(f"    expected: {finding.expected}")
        print(f"    received: {finding.received}")
        for line in shown:
            print(f"    {line}")
        if len(shown) < len(lines):
            print(f"    ... ({len(lines) - len(shown)} more lines; -v shows all)")


def main(argv: Sequence[str] | None = None) -> int:
    """Read every file, judge each interaction of the fragment's operations, print findings per promise, write reports."""
    commands = parser()
    args = commands.parse_args(argv)
    bad = [str(path) for path in args.conformance_report if path.suffix not in REPORT_SUFFIXES]
    if bad:
        commands.error(f"--conformance-report {bad[0]} must end in .md or .json")
    try:
        baseline = load_baseline(args.baseline) if args.baseline is not None else None
        recorded: list[Recorded] = [item for path in args.files for item in load_recordings(path)]
    except (BaselineError, RecordingError) as error:
        return fail("replay", str(error), INTERRUPTED_OR_UNREADABLE)
    today = datetime.date.today()
    log = FindingLog()
    if baseline is not None:
        log.excuser = baseline.excuser(today)
    run = RunContext()
    judged = [found for found in (judge_exchange(item, log, base_path=args.base_path, other_errors=args.judge_other_errors, run=run)
                                  for item in recorded) if found]
    found_review = review(baseline, log.findings.values(), today) if baseline is not None else None
    for found in judged:
        if any(finding.excused_by is None for finding in found.findings):
            print_failure(found, args.verbose)
    promises = [*BY_ID.values(), ENVELOPE_PROMISE]
    verdicts = [verdict for verdict in (verdict_of(p, [], log.findings.values(), log.reached[p.id]) for p in promises) if verdict.judged]
    problems = [Problem("baseline-expired", f"baseline entry {entry.label!r} expired on {entry.expires}: fix the deviation, or extend or"
                                            f" remove the entry in {args.baseline}") for entry in (found_review.expired if found_review else [])]
    summary = Summary(target="recorded traffic: " + ", ".join(map(str, args.files)), verdicts=verdicts, unmapped=[], review=found_review,
                      problems=problems, notes=[], requests=None, findings=sorted(log.findings.values(), key=lambda f: -f.count))
    skipped = len(recorded) - len(judged)
    print(f"katapult-conformance replay: {len(recorded)} interactions in {len(args.files)} files; {len(judged)} judged, "
          f"{skipped} of other endpoints skipped{'' if args.judge_other_errors else ' (--judge-other-errors judges their errors)'}")
    for text, _ in terminal_lines(summary):
        print(REDACT(text))
    if not judged:
        print("no interaction of the fragment's operations found: check the files and --base-path")
    for path in args.conformance_report:
        write_report(path, summary)
        print(f"conformance report written to {path}")
    return 0 if summary.passed else 1


if __name__ == "__main__":
    sys.exit(main())
