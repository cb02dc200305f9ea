"""`katapult-conformance replay FILE...`: judge recorded traffic with the live suite's checks, sending nothing.

Exit 0 when every exchange of the fragment's operations judged conforms (or is a known deviation in --baseline), 1 otherwise,
2 on unreadable files, 4 on unusable arguments, 5 when no exchange could be judged (an empty file, every path outside
--base-path, or no exchange with an answer and its body).
"""
from __future__ import annotations

import argparse
import datetime
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conformance.contract.findings import FindingLog, RunContext
from conformance.contract.ids import ERROR_ENVELOPE
from conformance.contract.promises import BY_ID, CONFORMS, FAILS, KNOWN, KNOWN_DEVIATION, Promise, PromiseVerdict
from conformance.gate.baseline import BaselineError, load_baseline, review
from conformance.gate.summary import Problem, Summary, terminal_lines, write_report
from conformance.setup.command import FAILED, INTERRUPTED_OR_UNREADABLE, OK, USAGE, CommandParser, fail
from conformance.setup.redaction import REDACT
from conformance.tools.replay.judge import (
    DEFAULT_BASE_PATH,
    LIVE_ONLY,
    JudgedExchange,
    base_of,
    is_suite_record,
    judge_exchange,
    operation_for,
)
from conformance.tools.replay.recordings import Recorded, RecordingError, load_recordings

ENVELOPE_PROMISE = KNOWN[ERROR_ENVELOPE]
FAILURE_LINES = 8
REPORT_SUFFIXES = (".md", ".json")
# pytest's "no tests collected": nothing in the files could be judged, which must not pass a CI gate silently.
NOTHING_JUDGED = 5
# Not-judgeable exchanges named one by one, up to this many.
NAMED = 10
OPERATIONS_TOLD = "allocate_ip, GET /ip_addresses/ip_address or POST /ip_addresses/ip_address/unallocate"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """"1 exchange", "2 exchanges"."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


@dataclass
class Sorted:
    """Every recorded exchange, by what replay could do with it."""

    recorded: list[Recorded]
    judged: list[JudgedExchange] = field(default_factory=list)
    # Mapped to an operation, but with nothing to judge: (exchange, why).
    unjudgeable: list[tuple[Recorded, str]] = field(default_factory=list)
    # The suite's own record: its preflight, reads and cleanup, which no test judged live either.
    bookkeeping: int = 0
    other: int = 0
    # Base paths under which exchanges of the fragment's operations were seen but not mapped (another --base-path).
    elsewhere: Counter[str] = field(default_factory=Counter)


def parser() -> argparse.ArgumentParser:
    """The replay command's arguments."""
    commands = CommandParser("replay", __doc__.splitlines()[0] if __doc__ else None,
                             exits=(OK, FAILED, INTERRUPTED_OR_UNREADABLE, USAGE, NOTHING_JUDGED),
                             says={OK: "every exchange judged conforms", FAILED: "an exchange does not conform",
                                   INTERRUPTED_OR_UNREADABLE: "a recording or the baseline could not be read",
                                   NOTHING_JUDGED: "no exchange could be judged (empty, every path outside --base-path, no answers)"})
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


def sort_exchanges(recorded: list[Recorded], log: FindingLog, base_path: str, other_errors: bool) -> Sorted:
    """Judge every exchange that can be; count and name the rest."""
    found = Sorted(recorded)
    # One run for the replay, passed to each exchange's judging: an answer found conforming is not validated again.
    run = RunContext()
    for item in recorded:
        mapped = operation_for(item, base_path) is not None
        if mapped and not item.answered:
            found.unjudgeable.append((item, "no answer: " + str(item.marks.get("_error") or "status 0, the request was aborted or failed")))
            continue
        if mapped and not item.captured:
            found.unjudgeable.append((item, "the response body was not captured"))
            continue
        judged = judge_exchange(item, log, base_path=base_path, other_errors=other_errors, run=run) if item.answered else None
        if judged is not None:
            found.judged.append(judged)
        elif is_suite_record(item):
            found.bookkeeping += 1
        else:
            found.other += 1
            seen = base_of(item.path)
            if seen is not None:
                found.elsewhere[seen] += 1
    return found


def replay_verdicts(promises: list[Promise], log: FindingLog, judged: list[JudgedExchange]) -> list[PromiseVerdict]:
    """Each promise the exchanges judged, in replay's words: how many exchanges judged it, or its deviations."""
    exchanges = Counter(promise for item in judged for promise in item.reached)
    verdicts = []
    for promise in promises:
        own = log.of(promise.id)
        unexcused = sum(finding.count for finding in own if finding.excused_by is None)
        live_only = f"; per exchange only ({LIVE_ONLY[promise.id]} needs a live run)" if promise.id in LIVE_ONLY else ""
        if unexcused:
            verdicts.append(PromiseVerdict(promise, FAILS, plural(unexcused, "deviation") + live_only, [], own))
        elif own:
            verdicts.append(PromiseVerdict(promise, KNOWN_DEVIATION, "; ".join(dict.fromkeys(str(f.excused_by) for f in own)), [], own))
        elif exchanges[promise.id] or log.reached[promise.id]:
            count = exchanges[promise.id] or log.reached[promise.id]
            verdicts.append(PromiseVerdict(promise, CONFORMS, f"{plural(count, 'exchange')} judged it, no finding{live_only}"))
    return verdicts


def nothing_judged(found: Sorted, files: list[Path], base_path: str) -> str:
    """Why nothing could be judged, and what to do: the base paths seen, the option to set."""
    names = ", ".join(map(str, files))
    if not found.recorded:
        return f"no exchange recorded in {names}: nothing to judge (an empty recording passes nothing)"
    if found.elsewhere:
        seen = ", ".join(f"{base} ({plural(count, 'exchange')})" for base, count in found.elsewhere.most_common())
        return (f"none of the {plural(len(found.recorded), 'exchange')} in {names} is {OPERATIONS_TOLD} under --base-path {base_path};"
                f" those operations were recorded under {seen}: pass --base-path {found.elsewhere.most_common(1)[0][0]}")
    if found.unjudgeable:
        return (f"none of the {plural(len(found.recorded), 'exchange')} in {names} could be judged: every exchange of {OPERATIONS_TOLD}"
                " has no answer or no captured body")
    if found.bookkeeping:
        return (f"the {plural(len(found.recorded), 'exchange')} in {names} are the run's own preflight, reads and cleanup, which no test"
                " judged live either: nothing to judge")
    starts = Counter("/" + "/".join(item.path.strip("/").split("/")[:2]) for item in found.recorded)
    seen = ", ".join(f"{start} ({count})" for start, count in starts.most_common(5))
    return (f"none of the {plural(len(found.recorded), 'exchange')} in {names} is {OPERATIONS_TOLD} under --base-path {base_path}"
            f" (their paths start {seen}); set --base-path to the API base the recording used, e.g. /core/v1")


def print_failure(judged: JudgedExchange, full: bool) -> None:
    """Each finding an exchange added: the exchange, the finding's headline and its first lines."""
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
    """Read every file, judge each exchange of the fragment's operations, print findings per promise, write reports."""
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
    found = sort_exchanges(recorded, log, args.base_path, args.judge_other_errors)
    judged = found.judged
    found_review = review(baseline, log.findings.values(), today) if baseline is not None else None
    for exchange in judged:
        if any(finding.excused_by is None for finding in exchange.findings):
            print_failure(exchange, args.verbose)
    verdicts = replay_verdicts([*BY_ID.values(), ENVELOPE_PROMISE], log, judged)
    problems = [Problem("baseline-expired", f"baseline entry {entry.label!r} expired on {entry.expires}: fix the deviation, or extend or"
                                            f" remove the entry in {args.baseline}") for entry in (found_review.expired if found_review else [])]
    summary = Summary(target="recorded traffic: " + ", ".join(map(str, args.files)), verdicts=verdicts, unmapped=[], review=found_review,
                      problems=problems, notes=[], requests=None, findings=sorted(log.findings.values(), key=lambda f: -f.count))
    print(REDACT(counts_line(found, args.files, args.judge_other_errors)))
    for item, why in found.unjudgeable[:NAMED]:
        print(REDACT(f"not judgeable: {item.label}: {why}"))
    if len(found.unjudgeable) > NAMED:
        print(f"not judgeable: {plural(len(found.unjudgeable) - NAMED, 'more exchange')}")
    if judged and found.elsewhere:
        seen = ", ".join(f"{base} ({plural(count, 'exchange')})" for base, count in found.elsewhere.most_common())
        print(f"note: the fragment's operations were also recorded under {seen}, outside --base-path {args.base_path}; pass --base-path"
              " to judge those instead")
    for text, _ in terminal_lines(summary):
        print(REDACT(text))
    if not judged:
        return fail("replay", REDACT(nothing_judged(found, args.files, args.base_path)), NOTHING_JUDGED)
    for path in args.conformance_report:
        write_report(path, summary)
        print(f"conformance report written to {path}")
    return 0 if summary.passed else 1


def counts_line(found: Sorted, files: list[Path], other_errors: bool) -> str:
    """How many exchanges were read, judged, not judgeable and skipped, in the right plurals."""
    parts = [f"{len(found.judged)} judged"]
    if found.unjudgeable:
        parts.append(f"{len(found.unjudgeable)} not judgeable")
    if found.bookkeeping:
        parts.append(f"{found.bookkeeping} of the run's own preflight, reads and cleanup (judged live by no test either)")
    if found.other:
        parts.append(f"{found.other} of other endpoints skipped" + ("" if other_errors else " (--judge-other-errors judges their errors)"))
    return f"katapult-conformance replay: {plural(len(found.recorded), 'exchange')} in {plural(len(files), 'file')}; {', '.join(parts)}"


if __name__ == "__main__":
    sys.exit(main())
