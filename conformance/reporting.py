"""The reporting hooks: each test's outcome per promise, baselined failures as known deviations, the end-of-run summary, redacted output."""
from __future__ import annotations

import datetime
import logging
import os
import re
from collections.abc import Generator
from pathlib import Path
from typing import Any, TextIO, cast

import pytest

from conformance.baseline import Baseline, BaselineError, Entry, Review, load_baseline, review, write_baseline
from conformance.config import SuiteConfig
from conformance.plugin import CONFIG_KEY, SESSION_KEY
from conformance.promises import (
    CLEANUP,
    DEVIATION,
    FAILED,
    MARKER,
    NOT_PROVOKED,
    NOT_RUN,
    PASSED,
    PROMISES,
    SKIPPED,
    TestOutcome,
    declared_promises,
    judge,
)
from conformance.redact import REDACT, RedactingFormatter, RedactingStream, env_secrets
from conformance.summary import Summary, terminal_lines, write_report

PROMISE_PROPERTY, CHARGED_PROPERTY, BASELINE_PROPERTY = "promise", "charged promise", "baseline entry"
REPORT_SUFFIXES = (".md", ".json")
QUALIFIED_NAME = re.compile(r"^(?:\w+\.)+(?=\w+: )")


def node_name(nodeid: str) -> str:
    """The name a baseline uses for a test: the last part of its node id, e.g. test_scenario[missing-token]."""
    return nodeid.rsplit("::", 1)[-1]


def properties(report: pytest.TestReport, name: str) -> tuple[str, ...]:
    """The values of one user property on a report, in order."""
    return tuple(str(value) for key, value in report.user_properties if key == name)


def failure_line(report: pytest.TestReport) -> str:
    """The first line of a failure, e.g. "ConformanceFailure: Expected 400 missing_api_token"."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return QUALIFIED_NAME.sub("", line)


def skip_reason(report: pytest.TestReport) -> str:
    """Why a test was skipped (which names the fixture key it needs)."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


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
    """Collects each test's outcome against its promises; turns baselined failures into known deviations; reports."""

    def __init__(self, config: pytest.Config, suite: SuiteConfig, baseline: Baseline | None) -> None:
        self.config = config
        self.suite = suite
        self.baseline = baseline
        self.today = datetime.date.today()
        self.outcomes: dict[str, TestOutcome] = {}
        self.summary: Summary | None = None
        self.written: list[str] = []

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
        """Attach each test's promises as properties (JUnit shows them; reports carry them)."""
        for item in items:
            item.user_properties.extend((PROMISE_PROPERTY, promise) for promise in declared_promises(item))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Charge a failure to the promise its exception names, else the test's first; excuse it if baselined; redact."""
        report = yield
        if report.when == "call" and report.failed:
            promises = properties(report, PROMISE_PROPERTY)
            named = getattr(call.excinfo.value, "promise", None) if call.excinfo is not None else None
            charged = (named,) if named in promises else promises[:1]
            report.user_properties.extend((CHARGED_PROPERTY, promise) for promise in charged)
            entry = self.baseline.excuse(node_name(item.nodeid), charged, self.today) if self.baseline else None
            if entry is not None:
                report.outcome = "skipped"
                report.wasxfail = f"{DEVIATION}: {entry.reason}"
                report.user_properties.append((BASELINE_PROPERTY, entry.id))
        scrub_report(report)
        return report

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        """Collection errors are redacted too."""
        report = yield
        scrub_report(report)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record how each test ended; a teardown failure counts against cleanup."""
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
        if hasattr(report, "wasxfail"):
            outcome = TestOutcome(name, promises, DEVIATION, report.wasxfail.removeprefix(f"{DEVIATION}: "),
                                  properties(report, CHARGED_PROPERTY), properties(report, BASELINE_PROPERTY)[0])
        elif report.skipped:
            outcome = TestOutcome(name, promises, SKIPPED, skip_reason(report), phase=report.when)
        elif report.failed:
            charged = properties(report, CHARGED_PROPERTY) or promises[:1]
            outcome = TestOutcome(name, promises, FAILED, failure_line(report), charged, phase=report.when)
        else:
            outcome = TestOutcome(name, promises)
        self.outcomes[report.nodeid] = outcome

    def ledger_outcome(self) -> list[TestOutcome]:
        """The end-of-run ledger check as a cleanup outcome (when the run touched any IP)."""
        session = self.config.stash.get(SESSION_KEY, None)
        if session is None or not session.ledger.started:
            return []
        drifts = "; ".join(str(drift) for drift in session.drifts)
        return [TestOutcome("end-of-run ledger check", (CLEANUP.id,), FAILED if drifts else PASSED, drifts, (CLEANUP.id,), phase="session")]

    def requests(self) -> dict[str, Any] | None:
        """Requests sent per status, on live targets."""
        session = self.config.stash.get(SESSION_KEY, None)
        if session is None or not session.target.is_live:
            return None
        statuses = session.target.statuses
        return {"sent": session.target.sent, "by_status": {str(status): statuses[status] for status in sorted(statuses)}}

    def baseline_findings(self, outcomes: list[TestOutcome]) -> tuple[Review | None, list[str], list[str]]:
        """The baseline review, the problems that fail the run, and notes."""
        if self.baseline is None:
            return None, [], []
        found = review(self.baseline, outcomes, self.today)
        where = self.baseline.path
        problems = [f"baseline entry {entry.id!r} expired on {entry.expires}: fix the deviation, or extend or remove the entry in {where}"
                    for entry in found.expired]
        fixed = [f"baseline entry {entry.id!r} now conforms: remove it from {where}" for entry in found.fixed]
        if self.suite.strict_baseline:
            return found, problems + [f"{message} (--strict-baseline)" for message in fixed], []
        return found, problems, fixed

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """After teardown: judge every promise, fail the run on baseline problems, write the report and baseline."""
        if self.config.option.collectonly:
            return
        outcomes = list(self.outcomes.values()) + self.ledger_outcome()
        found, problems, notes = self.baseline_findings(outcomes)
        verdicts = [judge(promise, outcomes) for promise in PROMISES]
        if self.suite.require_complete:
            problems += [f"promise {v.promise.id!r} is {v.verdict} (--require-complete)" for v in verdicts if v.verdict in (NOT_RUN, NOT_PROVOKED)]
        self.summary = Summary(
            target=target_description(self.suite),
            verdicts=verdicts,
            unmapped=[outcome for outcome in outcomes if not outcome.promises],
            review=found,
            problems=problems,
            notes=notes,
            requests=self.requests(),
            **self.wire(),
        )
        if problems and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.suite.report is not None:
            write_report(self.path(self.suite.report), self.summary)
            self.written.append(f"conformance report written to {self.suite.report}")
        if self.suite.write_baseline is not None:
            write_baseline(self.path(self.suite.write_baseline), self.starting_baseline(outcomes, found))
            self.written.append(f"baseline of this run's failures written to {self.suite.write_baseline}")

    def wire(self) -> dict[str, Any]:
        """What the target showed of its wire generation, for the summary."""
        session = self.config.stash.get(SESSION_KEY, None)
        if session is None:
            return {}
        return {"wire": session.wire.as_dict(), "wire_line": session.wire.describe()}

    def starting_baseline(self, outcomes: list[TestOutcome], found: Review | None) -> list[Entry]:
        """The entries still in use, then one per test that failed in its call (only those a baseline can excuse)."""
        entries = list(found.used) if found is not None else []
        failed = [o for o in outcomes if o.outcome == FAILED and o.phase == "call"]
        return entries + [Entry(o.name, o.reason or "failed") for o in failed]

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """One line per promise, then requests per status (live), baseline problems, and files written (if any promise was judged)."""
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


def start_reporter(config: pytest.Config) -> None:
    """After the plugin resolved its settings: load the baseline, start the reporter (only in runs of the suite)."""
    REDACT.add(env_secrets(os.environ))
    suite = config.stash[CONFIG_KEY]
    if suite.report is not None and suite.report.suffix not in REPORT_SUFFIXES:
        raise pytest.UsageError(f"katapult-conformance: --conformance-report {suite.report} must end in .md or .json")
    try:
        baseline = load_baseline(suite.baseline) if suite.baseline is not None else None
    except BaselineError as error:
        raise pytest.UsageError(f"katapult-conformance: {error}") from None
    config.pluginmanager.register(ConformanceReporter(config, suite, baseline), "katapult-conformance-reporter")
