"""The reporting hooks: each test's outcome per promise, baselined failures as known deviations, the end-of-run summary, redacted output."""
from __future__ import annotations

import datetime
import logging
import os
import re
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

import pytest
from _pytest._code.code import ReprFileLocation, TerminalRepr
from _pytest._io import TerminalWriter
from _pytest.junitxml import xml_key  # where pytest keeps its JUnit writer
from _pytest.outcomes import Skipped  # pytest.skip.Exception, importable for typing

from conformance.contract.checks import ConformanceFailure, forget_schemathesis_objects
from conformance.contract.findings import NOT_REACHED_PREFIX, FindingLog, Signature, TestScope, charged_to, message_shape
from conformance.contract.ids import RATE_LIMIT_REACHED
from conformance.contract.outcomes import Cause, CausedSkip
from conformance.contract.promises import (
    BY_ID,
    CLEANUP,
    DEVIATION,
    FAILED,
    FAILS,
    MARKER,
    PASSED,
    SKIPPED,
    OptedOut,
    TestOutcome,
    declared_promises,
)
from conformance.gate.baseline import Baseline, BaselineError, Entry, Review, load_baseline, review, write_baseline
from conformance.gate.keys import CONFIG_KEY, FINDINGS_KEY, PREFLIGHT_KEY, RUN_KEY, SCOPE_KEY, STOPPED_KEY, run_record
from conformance.gate.network import Unanswered, unanswered
from conformance.gate.putback import NOT_BACK, Drift, NotPutBack
from conformance.gate.summarise import RunFacts, summarise
from conformance.gate.summary import Problem, Summary, detail, finding_lines, terminal_lines, write_report
from conformance.gate.xdist import is_worker
from conformance.setup.redaction import REDACT, RedactingFormatter, RedactingStream, env_secrets
from conformance.setup.settings import SuiteConfig
from conformance.wire.interrupts import INTERRUPTS
from conformance.wire.transport import ConnectionDropped

if TYPE_CHECKING:
    # A live run's alone: a mock run never imports the preflight.
    from conformance.gate.preflight import Doubt

PROMISE_PROPERTY, CHARGED_PROPERTY, BASELINE_PROPERTY, REACHED_PROPERTY = "promise", "charged promise", "baseline entry", "reached promise"
OPTED_OUT_PROPERTY, CAUSE_PROPERTY = "opted out by", "skip cause"
REPORT_SUFFIXES = (".md", ".json")
QUALIFIED_NAME = re.compile(r"^(?:\w+\.)+(?=\w+: )")
# How pytest words a skip's reason (the reporter rewrites a suite skip's to this form, from the skip's own message).
SKIPPED_PREFIX = "Skipped: "


def node_name(nodeid: str) -> str:
    """The name a baseline uses for a test: the last part of its node id, e.g. test_scenario[missing-token]."""
    return nodeid.rsplit("::", 1)[-1]


def properties(report: pytest.TestReport, name: str) -> tuple[str, ...]:
    """The values of one user property on a report, in order."""
    return tuple(str(value) for key, value in report.user_properties if key == name)


def record(item: pytest.Item, report: pytest.TestReport, *found: tuple[str, str]) -> None:
    """Add properties to this report and to the test's: JUnit writes a test case's properties from its last (teardown) report."""
    report.user_properties.extend(found)
    item.user_properties.extend(found)


def failure_line(report: pytest.TestReport) -> str:
    """The first line of a failure, e.g. "ConformanceFailure: Expected 400 missing_api_token"."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return QUALIFIED_NAME.sub("", line)


def skip_reason(report: pytest.TestReport) -> str:
    """Why a test was skipped (which names the fixture key it needs), as the reader sees it after "Skipped: "."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix(SKIPPED_PREFIX)


def skip_cause(report: pytest.TestReport) -> Cause | None:
    """The cause a CausedSkip gave (carried as a property, so it reaches the xdist controller too); None for any other skip."""
    found = properties(report, CAUSE_PROPERTY)
    return Cause(found[0]) if found else None


@dataclass(frozen=True)
class Observation:
    """A finding's facts for a failure that is not a ConformanceFailure (a timeout, a crash of the test, a cleanup drift)."""

    title: str
    check: str
    expected: str
    received: str
    status: int | None = None
    code: str | None = None
    exchange: str = ""
    promise: str | None = None


def drift_observation(drift: Drift) -> Observation:
    """One IP's cleanup finding, the same from a test's cleanup and from the end-of-run ledger check (so seen twice, it is one)."""
    started = f"{drift.ip.id} as it started ({drift.started or 'free'})"
    if drift.put_back:
        return Observation(f"IP moved though no test left it changed: {drift.ip.id}", "end-of-run ledger check", started, str(drift))
    # The IP in the check: two IPs not back are two findings, each with its own command (their messages have one shape).
    return Observation(f"IP {NOT_BACK}: {drift.ip.id}", f"{drift.ip.id} put back", started, str(drift))


def first_failure(error: BaseException) -> BaseException:
    """The failure inside an exception group (hypothesis reports several distinct failures as one)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def as_judged(failure: BaseException, report: pytest.TestReport, declared: tuple[str, ...] = ()) -> Any:
    """The failure as a finding's facts: a ConformanceFailure already is one; a request closed on at every attempt is its request's;
    anything else is described by its first line."""
    if isinstance(failure, ConformanceFailure):
        return failure
    if isinstance(failure, ConnectionDropped):
        return unanswered(failure, declared)
    line = next((line.strip() for line in str(failure).splitlines() if line.strip()), type(failure).__name__)
    return Observation(line, type(failure).__name__, "the test to complete", REDACT(line))


def recorded_signature(failure: BaseException) -> Signature:
    """The signature a reported ConformanceFailure was recorded under."""
    assert isinstance(failure, ConformanceFailure) and failure.promise is not None
    return Signature(failure.promise, failure.check, failure.status, failure.code, message_shape(failure.received))


def reader_text(failure: ConformanceFailure, raised: BaseException) -> str:
    """What a server developer reads: the failure and its exchange, then the notes (falsifying example, seed, reproduce), no suite source."""
    # A list where there are notes, absent where none: an exception group's notes and its first failure's are joined as sequences.
    notes = [str(note) for note in [*getattr(raised, "__notes__", ()), *getattr(failure, "__notes__", ())] if str(note).strip()]
    return REDACT("\n".join([str(failure), *dict.fromkeys(notes)]))


RUN_NODE = "conformance"
INTERRUPTED_NODE = f"{RUN_NODE}::run[interrupted]"
UNSPOKEN = "(no test failed on it: its findings were seen by tests of other promises, between tests or at the end of the run)"


@dataclass(eq=False)
class CaseText(TerminalRepr):
    """Why a run-level case failed: its first line is the message JUnit and the short summary show, the whole text its report."""

    text: str

    @property
    def reprcrash(self) -> ReprFileLocation:
        """Where pytest and JUnit read a failure's one-line message."""
        return ReprFileLocation(RUN_NODE, 0, self.text.splitlines()[0])

    def toterminal(self, tw: TerminalWriter) -> None:
        """The whole text, as written."""
        for line in self.text.splitlines():
            tw.line(line)


def case_report(name: str, text: str, promises: tuple[str, ...], *, error: bool = False) -> pytest.TestReport:
    """A failing test report for what the run itself judged, e.g. `conformance::promise[rate-limit headers]`; an error (in JUnit and
    the last line) when it is not the target's fault: a setup the preflight refused, an interrupted run."""
    properties = [(PROMISE_PROPERTY, promise) for promise in promises] + [(CHARGED_PROPERTY, promise) for promise in promises]
    return pytest.TestReport(f"{RUN_NODE}::{name}", (RUN_NODE, None, name), {}, "failed", CaseText(REDACT(text)), "setup" if error else "call",
                             user_properties=properties)


def closing(case: pytest.TestReport) -> pytest.TestReport:
    """The passed teardown that ends a case (JUnit closes its test case, with its properties, on it)."""
    return pytest.TestReport(case.nodeid, case.location, {}, "passed", None, "teardown", user_properties=case.user_properties)


def unspoken_cases(summary: Summary, outcomes: list[TestOutcome]) -> list[pytest.TestReport]:
    """A failing case for each promise that fails with no failing test charged to it, and for each run-level check that fails the run."""
    spoken = {promise for outcome in outcomes if outcome.outcome == FAILED and outcome.phase != "session" for promise in outcome.charged}
    cases = []
    for verdict in summary.verdicts:
        if verdict.verdict == FAILS and verdict.promise.id not in spoken:
            findings = [line for finding in verdict.findings if finding.excused_by is None for line in finding_lines(finding)]
            text = "\n".join([f"{verdict.promise.id}: {detail(verdict)}", UNSPOKEN, *findings])
            cases.append(case_report(f"promise[{verdict.promise.id}]", text, (verdict.promise.id,)))
    checks = dict.fromkeys(problem.check for problem in summary.problems)
    cases += [case_report(f"run[{check}]", "\n".join(p.text for p in summary.problems if p.check == check), ()) for check in checks]
    return cases


SUITE_ORDER = ("conformance.test_scenarios", "conformance.test_concurrency", "conformance.test_generated")


def run_order(item: pytest.Item) -> int:
    """Scenarios, then concurrency, then generated properties, then the 429 burst; anything else keeps its place after the
    properties (the sort is stable)."""
    # The 429 burst costs what the rate-limit window has left when it starts: last, it follows the most requests of its window.
    if RATE_LIMIT_REACHED in declared_promises(item):
        return len(SUITE_ORDER) + 1
    module = getattr(getattr(item, "module", None), "__name__", "")
    return SUITE_ORDER.index(module) if module in SUITE_ORDER else len(SUITE_ORDER)


def scrub_report(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Replace every secret in what pytest, JUnit and this plugin will print from the report."""
    report.longrepr = REDACT.scrub(report.longrepr)
    if report.longrepr is not None and not isinstance(report.longrepr, tuple) and REDACT.leaks(str(report.longrepr)):
        report.longrepr = REDACT(str(report.longrepr))
    report.sections = REDACT.scrub(report.sections)
    if isinstance(report, pytest.TestReport):
        report.user_properties = [(key, REDACT(str(value)) if REDACT.leaks(str(value)) else value) for key, value in report.user_properties]
        if hasattr(report, "wasxfail"):
            report.wasxfail = REDACT(report.wasxfail)


def target_description(suite: SuiteConfig) -> str:
    """The target as the summary names it."""
    if suite.is_live:
        return str(suite.target_url)
    return "embedded reference mock" + (f" (mutant {suite.mock_mutant})" if suite.mock_mutant else "")


class ConformanceReporter:
    """Scopes each test's checks, records findings, excuses baselined ones, judges every promise once, and reports."""

    def __init__(self, config: pytest.Config, suite: SuiteConfig, baseline: Baseline | None) -> None:
        self.config = config
        self.suite = suite
        self.baseline = baseline
        self.today = datetime.date.today()
        self.log = FindingLog()
        if baseline is not None:
            self.log.excuser = baseline.excuser(self.today)
        config.stash[FINDINGS_KEY] = self.log
        self.outcomes: dict[str, TestOutcome] = {}
        self.summary: Summary | None = None
        self.written: list[str] = []
        self.emitted: set[str] = set()

    def path(self, given: Path) -> Path:
        """A path from the command line, relative to where pytest was invoked."""
        return self.config.invocation_params.dir / given

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Scrub the terminal and the log file too, before the header is written (defence in depth)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            writer = self.config.get_terminal_writer()
            writer._file = cast(TextIO, RedactingStream(writer._file, REDACT))
        logging_plugin = self.config.pluginmanager.get_plugin("logging-plugin")
        handler: logging.Handler | None = getattr(logging_plugin, "log_file_handler", None)
        if handler is not None:
            handler.setFormatter(RedactingFormatter(handler.formatter, REDACT))

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Attach each test's promises as properties; run the scenarios first, so the properties that build on them know how they went."""
        for item in items:
            item.user_properties.extend((PROMISE_PROPERTY, promise) for promise in declared_promises(item))
        items.sort(key=run_order)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        """While a test runs, its checks report to its scope: they fail it only on its own promises."""
        promises = tuple(str(value) for key, value in item.user_properties if key == PROMISE_PROPERTY)
        run = self.config.stash[RUN_KEY]
        scope = run.scope = TestScope(node_name(item.nodeid), promises, self.log)
        try:
            return (yield)
        finally:
            run.scope = None
            item.stash[SCOPE_KEY] = scope

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """A failure is a finding of the promise it speaks for; a baselined one becomes a known deviation; output for a reader; redact."""
        report = yield
        scope = item.stash.get(SCOPE_KEY, None)
        if report.when == "call" and scope is not None:
            record(item, report, *((REACHED_PROPERTY, promise) for promise in sorted(scope.reached)))
        skip = call.excinfo.value if report.skipped and call.excinfo is not None else None
        if isinstance(skip, CausedSkip):
            # As data, not in the skip's words: it travels with the report (to the xdist controller too).
            record(item, report, (CAUSE_PROPERTY, skip.cause.value))
        if isinstance(skip, OptedOut):
            record(item, report, (OPTED_OUT_PROPERTY, skip.setting))
        if isinstance(skip, Skipped) and isinstance(report.longrepr, tuple):
            # pytest words a subclass's skip by its class path; JUnit and -rs show the reason as pytest words a plain skip's.
            path, line, _ = report.longrepr
            report.longrepr = (path, line, SKIPPED_PREFIX + str(skip.msg))
        if report.failed and call.excinfo is not None and report.when in ("call", "teardown"):
            self.charge(item, report, call.excinfo.value)
        scrub_report(report)
        return report

    def charge(self, item: pytest.Item, report: pytest.TestReport, error: BaseException) -> None:
        """Record the failure as a finding (unless its check already did), name its promise, excuse it if the baseline says so."""
        promises = properties(report, PROMISE_PROPERTY) if report.when == "call" else (CLEANUP.id,)
        failure = first_failure(error)
        judged = as_judged(failure, report, promises)
        if isinstance(failure, ConformanceFailure):
            report.longrepr = reader_text(failure, error)
        elif isinstance(judged, Unanswered):
            notes = [str(note) for note in getattr(error, "__notes__", ()) if str(note).strip()]
            report.longrepr = REDACT("\n".join([f"{judged.title}\n  [check: {judged.check}]", judged.exchange, *dict.fromkeys(notes)]))
        if not promises:
            return
        if isinstance(failure, NotPutBack):
            # One finding per IP, the one the end-of-run ledger check records for it too.
            for drift in failure.drifts:
                self.log.record(drift_observation(drift), CLEANUP.id, node_name(item.nodeid))
            record(item, report, (CHARGED_PROPERTY, CLEANUP.id))
            return
        promise = charged_to(getattr(judged, "promise", None), promises) or promises[0]
        finding = (self.log.findings.get(recorded_signature(failure)) if getattr(failure, "recorded", False) else None) or \
            self.log.record(judged, promise, node_name(item.nodeid))
        record(item, report, (CHARGED_PROPERTY, finding.signature.promise))
        entry = self.baseline.entry(finding.excused_by) if self.baseline is not None and finding.excused_by is not None else None
        if entry is not None and report.when == "call":
            report.outcome = "skipped"
            report.wasxfail = f"{DEVIATION}: {entry.reason} ({entry.label})"
            record(item, report, (BASELINE_PROPERTY, entry.label))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        """Collection errors are redacted too."""
        report = yield
        scrub_report(report)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record how each test ended; a teardown failure counts against cleanup."""
        if report.nodeid in self.emitted:
            return
        name = node_name(report.nodeid)
        if report.when == "teardown":
            if report.failed:
                self.outcomes[report.nodeid + "::teardown"] = TestOutcome(
                    f"{name} (teardown)", (CLEANUP.id,), FAILED, failure_line(report), (CLEANUP.id,), phase="teardown"
                )
            return
        if report.when == "setup" and report.passed:
            return
        promises = properties(report, PROMISE_PROPERTY)
        reached = properties(report, REACHED_PROPERTY)
        if hasattr(report, "wasxfail"):
            outcome = TestOutcome(name, promises, DEVIATION, report.wasxfail.removeprefix(f"{DEVIATION}: "),
                                  properties(report, CHARGED_PROPERTY), properties(report, BASELINE_PROPERTY)[0], reached=reached)
        elif report.skipped:
            opted_out = next(iter(properties(report, OPTED_OUT_PROPERTY)), None)
            outcome = TestOutcome(name, promises, SKIPPED, skip_reason(report), phase=report.when, reached=reached, opted_out=opted_out,
                                  cause=skip_cause(report))
        elif report.failed:
            charged = properties(report, CHARGED_PROPERTY) or promises[:1]
            outcome = TestOutcome(name, promises, FAILED, failure_line(report), charged, phase=report.when, reached=reached)
        else:
            outcome = TestOutcome(name, promises, reached=reached)
        self.outcomes[report.nodeid] = outcome

    def ledger_outcome(self) -> list[TestOutcome]:
        """The end-of-run ledger check as a cleanup outcome (when the run touched any IP); a drift is a cleanup finding."""
        record = run_record(self.config)
        if record is None or not record.watched:
            return []
        for drift in record.drifts:
            self.log.record(drift_observation(drift), CLEANUP.id, "end-of-run ledger check")
        drifts = "; ".join(str(drift) for drift in record.drifts)
        if not drifts and record.unchecked:
            return [TestOutcome("end-of-run ledger check", (CLEANUP.id,), SKIPPED, f"{NOT_REACHED_PREFIX}interrupted again before it read"
                                f" {', '.join(record.unchecked)}", phase="session", cause=Cause.NOT_REACHED)]
        if not drifts:
            self.log.reach(CLEANUP.id)
        return [TestOutcome("end-of-run ledger check", (CLEANUP.id,), FAILED if drifts else PASSED, drifts, (CLEANUP.id,), phase="session")]

    def requests(self) -> dict[str, Any] | None:
        """Requests the tests sent per status, those the preflight(s) sent before them and the xdist controller's end-of-run check
        after them, and all of them: what the target received, on live targets."""
        record = run_record(self.config)
        if record is None or not record.live:
            return None
        statuses = record.statuses
        return {"sent": record.sent, "by_status": {str(status): statuses[status] for status in sorted(statuses)},
                "preflight": record.preflight, "throttled": record.throttled, "preflights": record.preflights,
                "end_of_run": record.end_of_run, "total": record.sent + record.preflight + record.end_of_run}

    def baseline_problems(self) -> tuple[Review | None, list[Problem], list[str]]:
        """Mark the findings the baseline excuses; the problems that fail the run, and notes."""
        if self.baseline is None:
            return None, [], []
        found = review(self.baseline, self.log.findings.values(), self.today)
        where = self.baseline.path
        problems = [Problem("baseline-expired", f"baseline entry {entry.label!r} expired on {entry.expires}: fix the deviation, or extend"
                                                f" or remove the entry in {where}") for entry in found.expired]
        unmatched = [f"baseline entry {entry.label!r} matched no finding in this run: remove it from {where}" for entry in found.unmatched]
        if self.suite.strict_baseline:
            return found, problems + [Problem("strict-baseline", f"{message} (--strict-baseline)") for message in unmatched], []
        return found, problems, unmatched

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """After teardown: judge every promise once, fail the run on what fails or is missing, write the reports and baseline."""
        if self.config.option.collectonly:
            return
        outcomes = list(self.outcomes.values()) + self.ledger_outcome()
        found, problems, notes = self.baseline_problems()
        # An interrupt once the tests were over raised nothing (it ended cleanup's waits): the run was interrupted all the same.
        if INTERRUPTS.stopping and not is_worker(self.config) and session.exitstatus != pytest.ExitCode.INTERRUPTED:
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        # A run stopped because the target stopped answering is not an interrupted one (exit 4, its own status and case).
        stopped = self.config.stash.get(STOPPED_KEY, None)
        interrupted = stopped is None and (exitstatus == pytest.ExitCode.INTERRUPTED or INTERRUPTS.stopping
                                           or (session.shouldstop is not False and bool(session.shouldstop)))
        preflight = self.config.stash.get(PREFLIGHT_KEY, None)
        setup_problems = list(preflight.problems) if preflight is not None else []
        self.summary = summarise(RunFacts(
            target=target_description(self.suite),
            outcomes=outcomes,
            findings=list(self.log.findings.values()),
            reached=dict(self.log.reached),
            review=found,
            problems=problems,
            notes=notes,
            interrupted=interrupted,
            setup_problems=setup_problems,
            stopped=stopped,
            machines_from=preflight.machine_source if preflight is not None and preflight.ok else None,
            require_complete=self.suite.require_complete,
            live=self.suite.is_live,
            requests=self.requests(),
            **self.wire(),
        ))
        failing = any(verdict.verdict == FAILS for verdict in self.summary.verdicts)
        if (self.summary.problems or failing) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if setup_problems:
            text = f"the setup is wrong, no test was run (exit 6): {'; '.join(setup_problems)}"
            self.emit(session, [case_report("run[setup]", text, (), error=True)])
        elif stopped is not None:
            self.emit(session, [case_report("run[target-stopped-answering]", f"{stopped}: the run stopped there (exit 4); its verdicts are"
                                            " partial and it is not a pass; cleanup says what to put back", (), error=True)])
        elif interrupted:
            self.emit(session, [case_report(INTERRUPTED_NODE.removeprefix(f"{RUN_NODE}::"),
                                            f"the run was interrupted ({session.shouldstop or 'Ctrl-C or SIGTERM'}):"
                                            " its verdicts are partial and it is not a pass; cleanup still ran", (), error=True)])
        else:
            self.emit(session, unspoken_cases(self.summary, outcomes))
        for report_path in self.suite.report:
            write_report(self.path(report_path), self.summary)
            self.written.append(f"conformance report written to {report_path}")
        if self.suite.write_baseline is not None:
            entries = list(found.used) if found is not None else []
            entries += [Entry.for_finding(f, self.today) for f in self.summary.findings if f.excused_by is None]
            write_baseline(self.path(self.suite.write_baseline), entries)
            self.written.append(f"baseline of this run's findings written to {self.suite.write_baseline}")

    def emit(self, session: pytest.Session, cases: list[pytest.TestReport]) -> None:
        """Report the run's own failing cases as tests, once (on the xdist controller, not its workers): the terminal's counts and
        last line, JUnit and the exit code then tell the same story as the summary."""
        if not cases or is_worker(self.config):
            return
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        verbosity = self.config.get_verbosity()
        if terminal is not None and verbosity <= 0:
            # Their letters on a line of their own, like a test file's, not after the last file's progress.
            writer = self.config.get_terminal_writer()
            if writer.width_of_current_line:
                writer.line()
            if verbosity == 0:
                writer.write(f"{RUN_NODE} ")
        # They are tests of this run: counted as collected, the progress ends at 100%, not past it.
        session.testscollected += len(cases)
        for case in cases:
            self.emitted.add(case.nodeid)
            self.config.hook.pytest_runtest_logreport(report=case)
            self.config.hook.pytest_runtest_logreport(report=closing(case))
        xml = self.config.stash.get(xml_key, None)
        if xml is not None:
            # pytest wrote JUnit before this judgement could be made (it follows pytest's own end-of-run teardown): again, with the cases.
            xml.pytest_sessionfinish()

    def wire(self) -> dict[str, Any]:
        """What the target showed of its wire generation, and what the network did to the requests (live, or any retry), for the summary."""
        record = run_record(self.config)
        if record is None:
            return {}
        shown = {"wire": record.wire.as_dict(), "wire_line": record.wire.describe()}
        health = record.network
        if record.live or health.retried or health.unanswered or health.lost_unjudged:
            shown |= {"network": health.as_dict(), "network_line": health.describe()}
        return shown | {"shared_token": list(record.shared_token)}

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        """The interrupted run's case is counted as `interrupted` in the last line (an error in JUnit), so the line says so."""
        if report.nodeid == INTERRUPTED_NODE and report.failed:
            return "interrupted", "!", "INTERRUPTED"
        return None

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """One line per promise, the findings, requests per status (live), problems, and files written (if any promise was judged)."""
        summary = self.summary
        if summary is None or not summary.judged:
            return
        terminalreporter.write_sep("=", f"katapult-conformance: {summary.target}")
        for text, markup in terminal_lines(summary):
            terminalreporter.write_line(text, **markup)
        for line in self.written:
            terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (whether or not the suite runs, so --strict-markers accepts it)."""
    config.addinivalue_line("markers", f"{MARKER}(*ids): the documented promise(s) of allocate_ip this test speaks for")


PREFLIGHT_TEST = "preflight"


def record_doubts(config: pytest.Config, doubts: Iterable[Doubt]) -> None:
    """Each doubt of the preflight is a finding of its promise, naming both causes (the tests that would use the fixture are not run)."""
    log = config.stash.get(FINDINGS_KEY, None)
    if log is None:
        return
    for doubt in doubts:
        promise = BY_ID[doubt.promise]
        log.record(Observation(f"{doubt.key}: a setup mistake or a server fault", "preflight doubt", promise.description, doubt.message),
                   promise.id, PREFLIGHT_TEST)


def start_reporter(config: pytest.Config) -> None:
    """After the plugin resolved its settings: load the baseline, start the reporter (only in runs of the suite)."""
    REDACT.add(env_secrets(os.environ))
    forget_schemathesis_objects()
    suite = config.stash[CONFIG_KEY]
    for report_path in suite.report:
        if report_path.suffix not in REPORT_SUFFIXES:
            raise pytest.UsageError(f"katapult-conformance: --conformance-report {report_path} must end in .md or .json")
    try:
        baseline = load_baseline(suite.baseline) if suite.baseline is not None else None
    except BaselineError as error:
        raise pytest.UsageError(f"katapult-conformance: {error}") from None
    config.pluginmanager.register(ConformanceReporter(config, suite, baseline), "katapult-conformance-reporter")
