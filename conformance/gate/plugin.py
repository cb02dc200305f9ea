"""The pytest plugin: options, the resolved target in the header, and the target/ledger fixtures."""
from __future__ import annotations

import contextlib
import secrets
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest
from _pytest.outcomes import Skipped  # pytest.skip.Exception, importable for typing

from conformance.gate.collection import targets_suite
from conformance.gate.keys import (
    CONFIG_KEY,
    FINDINGS_KEY,
    FIXTURES_KEY,
    HEAP_KEY,
    PREFLIGHT_KEY,
    RUN_KEY,
    SEED_KEY,
    SESSION_KEY,
    SETTINGS_KEY,
    STOPPED_KEY,
    run_record,
)
from conformance.setup.settings import OPTIONS, ConfigError, SuiteConfig, build_config

# Every pytest run in an environment with the suite installed loads this module, so it imports only what the options and
# the run's first decision need: the rest is imported where it is used, when it is (a run that does not name the suite
# imports none of it; a mock run never imports the preflight or the request log; a live run never imports the mock).
if TYPE_CHECKING:
    import httpx

    from conformance.gate.ledger import AllocationLedger
    from conformance.gate.session import ConformanceSession
    from conformance.setup.fixtures import TargetFixtures
    from conformance.wire.transport import Target

# The end-of-run summary, baseline and redaction hooks, the host-independent collection, xdist support and the live
# status line live in their own modules; xdist is registered first so its trylast pytest_configure runs before the reporter's.
pytest_plugins = ("conformance.gate.xdist", "conformance.gate.reporting", "conformance.gate.collection", "conformance.gate.progress")

def pytest_addoption(parser: pytest.Parser) -> None:
    """All options in one group; each names its environment variable."""
    group = parser.getgroup("katapult-conformance", "Katapult allocate_ip conformance suite")
    for option in OPTIONS:
        help_text = option.help + (f" [env {option.env}]" if option.env else "")
        if option.kind == "flag":
            group.addoption(option.flag, action="store_true", dest=f"conformance_{option.dest}", help=help_text)
        elif option.kind == "paths":
            group.addoption(option.flag, action="append", dest=f"conformance_{option.dest}", default=None, help=help_text)
        else:
            group.addoption(option.flag, action="store", dest=f"conformance_{option.dest}", default=None, help=help_text)


def pytest_configure(config: pytest.Config) -> None:
    """A run whose arguments name the suite is set up now, so bad input stops it before any output; any other run is left alone."""
    if targets_suite(config):
        activate(config)


def is_active(config: pytest.Config) -> bool:
    """Whether this run has set the suite up (only runs that collect its tests do)."""
    return CONFIG_KEY in config.stash


def activate(config: pytest.Config) -> None:
    """Resolve settings and load the target fixtures before anything is sent; bad input is a usage error."""
    from conformance.contract.findings import RunContext
    from conformance.contract.findings import activate as activate_run
    from conformance.gate.heap import StartUpHeap
    from conformance.gate.reporting import start_reporter
    from conformance.gate.signals import handle_signals
    from conformance.setup.fixtures import FixturesError, load_target_fixtures
    from conformance.setup.profiles import session_seed, suite_settings
    from conformance.setup.references import NAMES

    cli = {option.dest: config.getoption(f"conformance_{option.dest}") for option in OPTIONS}
    try:
        suite = build_config(cli)
        fixtures = load_target_fixtures(suite.fixtures_path)
        if not suite.is_live:
            from conformance.mock.inprocess import mock_class

            mock_class(suite.mock_mutant)
            check_world(suite)
    except (ConfigError, FixturesError, ValueError) as error:
        raise pytest.UsageError(f"katapult-conformance: {error}") from None
    handle_signals(config)
    # Frozen once the suite is collected; given back in a cleanup registered now, from pytest_configure: before pytest's
    # own configure registers the full collections of its end of run, so those run first, on the smaller heap.
    heap = config.stash[HEAP_KEY] = StartUpHeap()
    config.add_cleanup(heap.give_back)
    # The run's state in one object: active until the config ends, then the run and the secrets before it are put back, so
    # nothing outlives it (in-process runs, as pytester makes them, start clean). Requests presenting the authenticated
    # headers get past the rate limiter, so their argument errors must carry X-RateLimit-*.
    run = config.stash[RUN_KEY] = RunContext(
        authenticated=frozenset(credential.headers["Authorization"] for key, credential in fixtures.credentials.items()
                                if key in ("valid", "without_scope") and "Authorization" in credential.headers),
        secrets=frozenset(fixtures.secrets()))
    config.add_cleanup(activate_run(run))
    # Reproduce lines name each credential by the variable the fixtures read it from, until the session ends.
    config.add_cleanup(NAMES.use(fixtures))
    config.stash[CONFIG_KEY] = suite
    config.stash[FIXTURES_KEY] = fixtures
    config.stash[SETTINGS_KEY] = suite_settings(suite.profile, suite.max_examples)
    given_seed = config.getoption("hypothesis_seed", None)
    config.stash[SEED_KEY] = session_seed(suite.profile, int(given_seed) if given_seed is not None else None)
    start_reporter(config)
    if suite.record is not None:
        from conformance.gate.recording import start_recording

        start_recording(config)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Suite tests (or tests opting in to it) collected by a run whose arguments did not name the suite: set it up now, show its settings."""
    if is_active(config) or not any(uses_suite(item) for item in items):
        return
    activate(config)
    reporter = config.pluginmanager.get_plugin("katapult-conformance-reporter")
    assert reporter is not None
    # Registered during this hook, so pluggy does not call the reporter's own hooks that already ran.
    reporter.pytest_sessionstart(session)
    reporter.pytest_collection_modifyitems(items)
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None and config.get_verbosity() >= 0:
        for line in pytest_report_header(config):
            terminal.write_line(line)


@contextlib.contextmanager
def skipped_for_its_cause() -> Iterator[None]:
    """A missing or unusable fixture entry skips the test as not provoked, the run's bounds as not run: the cause as data."""
    from conformance.contract.outcomes import NotProvoked, NotRun
    from conformance.setup.fixtures import MissingFixture
    from conformance.wire.transport import BudgetExhausted

    try:
        yield
    except MissingFixture as missing:
        raise NotProvoked(str(missing)) from None
    except BudgetExhausted as spent:
        raise NotRun(str(spent)) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    """Past --max-duration a test is not started; the budget running out while its fixtures are set up skips it too."""
    from conformance.contract.outcomes import NotRun

    session = item.config.stash.get(SESSION_KEY, None)
    if session is not None and session.target.out_of_time() and is_conformance_item(item):
        raise NotRun(str(session.target.out_of_time_error()))
    try:
        with skipped_for_its_cause():
            return (yield)
    except (Exception, Skipped) as error:
        stop_if_gone(item, error)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """A suite test runs under the suite's hypothesis settings; lacking a fixture entry or request budget, it is skipped saying why."""
    if not is_active(item.config) or not uses_suite(item):
        return (yield)
    from hypothesis._settings import local_settings

    from conformance.setup.profiles import without_local_constants
    from conformance.wire.transport import AnswerLost

    try:
        with skipped_for_its_cause():
            if not is_conformance_item(item):
                return (yield)
            with local_settings(item.config.stash[SETTINGS_KEY]), without_local_constants():
                try:
                    return (yield)
                except AnswerLost:
                    # The network took the test's exchange after the server may have acted: never the server's fault; run it again once.
                    from conformance.gate.network import rerun_once

                    rerun_once(item)
                    return None
    except (Exception, Skipped) as error:
        stop_if_gone(item, error)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """The budget running out in a teardown that is not cleanup (cleanup is never budgeted) skips, naming the option."""
    from conformance.wire.transport import BudgetExhausted

    try:
        return (yield)
    except BudgetExhausted as cannot_run:
        from conformance.contract.outcomes import NotRun

        raise NotRun(str(cannot_run)) from None
    except (Exception, Skipped) as error:
        stop_if_gone(item, error)
        raise


def stop_if_gone(item: pytest.Item, error: BaseException) -> None:
    """A target that stopped answering in the middle of the run ends it now, exit 4 (cleanup still says what to put back)."""
    if not is_active(item.config):
        return
    from conformance.gate.network import gone_in, stop_run

    why = gone_in(error)
    if why is not None:
        stop_run(item.session, why)


def check_world(suite: SuiteConfig) -> None:
    """A --mock-world file that cannot be loaded is a usage error now, not at the first test."""
    if suite.mock_world is None:
        return
    from conformance.mock.world import WorldError, load_world

    try:
        load_world(suite.mock_world)
    except WorldError as error:
        raise ConfigError(f"{error}; fix it or drop --mock-world") from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Show the resolved target, fixtures and profile, and where each came from (never a secret); nothing when the suite is not run."""
    if not is_active(config):
        return []
    return [*config.stash[CONFIG_KEY].header_lines(), f"katapult-conformance hypothesis seed: {config.stash[SEED_KEY]}",
            f"katapult-conformance {machine_source(config)}"]


def machine_source(config: pytest.Config) -> str:
    """Where interface virtual machines come from: on the mock, one read tells; on a live target the preflight says it."""
    suite, fixtures = config.stash[CONFIG_KEY], config.stash[FIXTURES_KEY]
    if suite.is_live:
        return ("interface virtual machines from the interface read where credentials.valid may read interfaces, else from"
                " allocate_ip's 200 answers (the preflight says which)")
    from conformance.gate.machines import InterfaceMachines
    from conformance.gate.recording import attach, marked
    from conformance.gate.session import make_target
    from conformance.wire.har import SESSION_START
    from conformance.wire.transport import TargetError

    probe = make_target(suite)
    attach(config, probe)
    machines = InterfaceMachines(probe, fixtures.credential("valid"))
    try:
        with contextlib.suppress(TargetError), marked(config, phase=SESSION_START):
            machines.of(fixtures.network_interface_id, budgeted=False)
    finally:
        probe.close()
    return machines.describe()


# The suite's options that shape what a test sends and how it is judged: a reproduce command keeps each the run did not leave
# at its default. The others only record a run (reports, request log, baseline) or stop it (its budget and duration).
SHAPING_OPTIONS = ("target_url", "target_fixtures", "max_examples", "mock_mutant", "mock_world", "request_timeout", "max_rate", "ca_bundle",
                   "allow_production")


def reproduce_command(config: pytest.Config, test_name: str) -> str:
    """The command that replays a generated test's failure: same test, profile, seed, target and every option that shaped it (never a secret)."""
    import shlex

    suite = config.stash[CONFIG_KEY]
    parts = ["pytest --pyargs conformance", f"-k {shlex.quote(test_name)}", f"--conformance-profile={suite.profile}",
             f"--hypothesis-seed={config.stash[SEED_KEY]}"]
    for option in OPTIONS:
        setting = suite.settings[option.dest]
        if option.dest not in SHAPING_OPTIONS or setting.source == "default":
            continue
        # Joined with `=`: a separate path would move pytest's rootdir (README, "First commands").
        parts.append(option.flag if option.kind == "flag" else f"{option.flag}={shlex.quote(str(setting.value))}")
    return " ".join(parts)


def is_conformance_item(item: pytest.Item) -> bool:
    """Whether a collected test belongs to the suite (not to whatever else the session runs)."""
    module = getattr(item, "module", None)
    return module is not None and module.__name__.startswith("conformance.")


def uses_suite(item: pytest.Item) -> bool:
    """Whether a test is the suite's or opts in to it: it declares a promise, or uses one of this plugin's fixtures."""
    from conformance.contract.promises import MARKER

    if is_conformance_item(item) or item.get_closest_marker(MARKER) is not None:
        return True
    fixture_info = getattr(item, "_fixtureinfo", None)
    definitions = getattr(fixture_info, "name2fixturedefs", {})
    return any(getattr(defs[-1].func, "__module__", None) == __name__ for defs in definitions.values() if defs)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Before any test on a live target: the preflight checks the setup; a wrong one stops the run with exit 6, one line per problem."""
    if any(is_conformance_item(item) for item in session.items):
        check_setup(session)
        stop_if_refused(session)
        heap = session.config.stash.get(HEAP_KEY, None)
        if heap is not None and not session.config.option.collectonly:
            heap.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """On the xdist controller, which collects nothing: the same preflight, after the session's header, so the controller's
    report says what it found; a setup it refused ends the run here (exit 6), before any worker's test, and the end of the
    run still reports it (JUnit, the report), as without xdist."""
    from conformance.gate.xdist import is_controller

    if is_controller(session.config):
        if is_active(session.config):
            check_setup(session)
        stop_if_refused(session)


def stop_if_refused(session: pytest.Session) -> None:
    """Exit 6 when this process's preflight refused the setup."""
    from conformance.setup.command import SETUP

    found = session.config.stash.get(PREFLIGHT_KEY, None)
    if found is not None and not found.ok:
        pytest.exit(f"katapult-conformance: the setup is wrong, no test was run (exit {SETUP})", returncode=SETUP)


def check_setup(session: pytest.Session) -> None:
    """The preflight, on a live run that runs tests: what it found is stashed and shown; stop_if_refused acts on it."""
    suite = session.config.stash.get(CONFIG_KEY, None)
    if suite is None or not suite.is_live or session.config.option.collectonly:
        return
    from conformance.gate.xdist import is_worker, share_preflight

    if is_worker(session.config):
        # One preflight per run: an xdist worker takes the controller's result (conformance_session reads it).
        return
    from conformance.gate.preflight import preflight, setup_verdict, stop_message
    from conformance.gate.recording import attach, marked
    from conformance.gate.session import make_target
    from conformance.wire.har import PREFLIGHT
    from conformance.wire.profile import WireProfile
    from conformance.wire.transport import TargetError

    probe = make_target(suite)
    wire = WireProfile()
    probe.observers.append(wire.observe)
    attach(session.config, probe)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def say(message: str) -> None:
        if reporter is not None:
            reporter.write_line(f"katapult-conformance preflight: {message}")
            reporter.flush()

    try:
        with marked(session.config, phase=PREFLIGHT, test=None, promises=[]):
            found = preflight(probe, session.config.stash[FIXTURES_KEY], say)
    except TargetError as error:
        raise pytest.UsageError(f"katapult-conformance: {error}") from None
    finally:
        probe.close()
    session.config.stash[PREFLIGHT_KEY] = found
    share_preflight(session.config, found)
    if not found.ok:
        if reporter is not None:
            reporter.write_line(stop_message(found), red=True)
        return
    if found.doubts:
        from conformance.gate.reporting import record_doubts
        from conformance.gate.xdist import is_worker

        # Once per run: the xdist controller (or the one process) records them; its workers only hold back what they doubt.
        if not is_worker(session.config):
            record_doubts(session.config, found.doubts)
    if reporter is not None:
        reporter.write_line(f"katapult-conformance preflight: {setup_verdict(found)} ({found.requests} requests)")
        for doubt in found.doubts:
            reporter.write_line(f"katapult-conformance preflight doubt: {doubt}", yellow=True)
        reporter.write_line(f"katapult-conformance preflight: interface virtual machines from {found.machine_source}")
        for note in found.notes:
            reporter.write_line(f"katapult-conformance preflight note: {note}")
        reporter.write_line(f"katapult-conformance target showed: {wire.describe()}")


def bursts_for_429(session: pytest.Session) -> bool:
    """Whether this run holds the test the 429 burst is for (a run selecting other tests spends no window on it)."""
    from conformance.contract.ids import RATE_LIMIT_REACHED
    from conformance.contract.promises import declared_promises

    return any(RATE_LIMIT_REACHED in declared_promises(item) for item in session.items)


@pytest.fixture(scope="session")
def conformance_session(request: pytest.FixtureRequest) -> Iterator[ConformanceSession]:
    """Create the target once per run; at the end, undo and verify every allocation the suite made."""
    from conformance.contract.promises import CLEANUP
    from conformance.gate.ledger import AllocationLedger
    from conformance.gate.putback import Drift
    from conformance.gate.recording import attach, marked, marking
    from conformance.gate.session import ConformanceSession, cleanup_message, make_target, record_starting_state
    from conformance.gate.signals import CleanupNotice, terminal_writer, tests_over, unchecked_message
    from conformance.wire.har import BURST, END_OF_RUN, SESSION_START
    from conformance.wire.interrupts import INTERRUPTS
    from conformance.wire.pacing import RateLimitMonitor
    from conformance.wire.transport import TargetError

    config = request.config
    suite = config.stash[CONFIG_KEY]
    fixtures = config.stash[FIXTURES_KEY]
    target = make_target(suite, seed=config.stash[SEED_KEY])
    # The preflight's reads were answered (here or on the xdist controller), or the target is the mock in this process: a
    # request lost on every attempt from now on asks whether the target still answers, instead of calling it unreachable.
    target.answered_once = True
    target.pacer.on_stall = report_stalled_rate_limit
    monitor = RateLimitMonitor(clock=target.pacer.now, window_seconds=target.pacer.window_seconds)
    session = ConformanceSession(target, AllocationLedger(target, fixtures.credential("valid")), secrets.token_hex(6), fixtures,
                                 rate_limit_monitor=monitor)
    target.observers += [session.observe, session.rate_limit_monitor.observe, session.wire.observe, session.interfaces.learn,
                         session.ledger.observe]
    # A state-changing request whose answer was lost is sent again only once the ledger has read that nothing it names moved.
    target.settle = session.ledger.settle_lost
    notice = CleanupNotice(session.ledger, terminal_writer(config))
    target.pacer.sleep = notice.wrap(target.pacer.sleep)
    request_log = None
    if suite.request_log:
        from conformance.wire.request_log import RequestLog

        request_log = RequestLog(suite.request_log, session.run_id)
    if request_log is not None:
        target.observers.append(request_log.observe)
        target.attempt_observers.append(request_log.attempt)
    attach(config, target)
    config.stash[SESSION_KEY] = session
    if fixtures.provoke_rate_limit and bursts_for_429(request.session):
        from conformance.cases.rate_limit import WindowEndBurst, sender
        from conformance.cases.scenarios import RunValues
        from conformance.contract.ids import RATE_LIMIT_REACHED
        from conformance.contract.promises import declared_promises

        values = RunValues(session.run_id)
        burst = session.window_end_burst = WindowEndBurst(sender(target, fixtures.credential("valid"), values.value("unknown_interface"),
                                                                 values.value("unknown_ip")))
        # Made inside another test's request, the burst serves the 429's test: the record says so.
        served = next((item.nodeid for item in request.session.items if RATE_LIMIT_REACHED in declared_promises(item)), None)
        target.pacer.on_window_spent = marking(config, burst, test=served, promises=[RATE_LIMIT_REACHED], phase=BURST)
    # While the suite's session lives, what its own requests see between tests is recorded, not raised at every test.
    run = config.stash[RUN_KEY]
    run.between_tests = config.stash.get(FINDINGS_KEY, None)
    found = config.stash.get(PREFLIGHT_KEY, None)
    session.preflight_requests = found.requests if found is not None else 0
    if found is None and suite.is_live:
        from conformance.gate.xdist import shared_preflight

        # An xdist worker: the controller's preflight read the starting state (its requests are counted there).
        found = shared_preflight(config)
    session.doubts = list(found.doubts) if found is not None else []
    with marked(config, phase=SESSION_START, promises=[CLEANUP.id]):
        record_starting_state(session, found)
    yield session
    tests_over()
    try:
        with marked(config, phase=END_OF_RUN, test=None, promises=[CLEANUP.id]):
            left = session.ledger.verify()
        session.drifts = [*session.ledger.moved_unasked, *left]
    except TargetError as error:
        session.drifts = [Drift(ip, started, f"unknown ({error})") for ip, started in session.ledger.started.items()]
    finally:
        run.between_tests = None
        target.close()
        if request_log is not None:
            request_log.close()
    notice.outcome(sum(not drift.put_back for drift in session.drifts), len(session.ledger.unchecked))
    # Not a failure of the last test: the reporter judges these as the end-of-run ledger check (findings of `cleanup`, a failing
    # case of their own when no test failed on them). Raised here, it would fail whichever test ran last, and inside pytest's
    # own end of the session (an interrupted or stopped run) it would be a crash.
    if INTERRUPTS.stopping or request.session.shouldstop or request.session.shouldfail or STOPPED_KEY in config.stash:
        # The run ends early (an interrupt, -x, a target gone): the commands go out now, before the reports (a CI job's SIGKILL may follow).
        write = terminal_writer(config)
        if session.drifts:
            write(cleanup_message(session))
        if session.ledger.unchecked:
            write(unchecked_message(session.ledger.unchecked))


def report_stalled_rate_limit(message: str, response: httpx.Response) -> None:
    """A Remaining that does not recover after a whole window is a shared token (the pacer notes it for the report), not a finding:
    the rate-limit headers promise fails only on headers that contradict themselves (RateLimitMonitor); pacing goes on."""


@pytest.fixture(scope="session")
def target_fixtures(request: pytest.FixtureRequest) -> TargetFixtures:
    """The target's test data."""
    return request.config.stash[FIXTURES_KEY]


@pytest.fixture(scope="session")
def target(conformance_session: ConformanceSession) -> Target:
    """The target every request goes through."""
    return conformance_session.target


@pytest.fixture
def ledger(request: pytest.FixtureRequest, conformance_session: ConformanceSession) -> Iterator[AllocationLedger]:
    """The allocation ledger; whatever a test allocated is undone when it ends, pass or fail."""
    from conformance.gate.putback import NotPutBack
    from conformance.wire.interrupts import INTERRUPTS

    yield conformance_session.ledger
    drifts = conformance_session.ledger.restore()
    # Torn down in pytest's end of the session (an interrupted run, or one stopped because the target is gone), a failure would
    # crash it: the IPs stay the ledger's, and the end-of-run check, which tries them again, names them.
    if drifts and not INTERRUPTS.tests_over and STOPPED_KEY not in request.config.stash:
        raise NotPutBack(drifts)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How far generation reached: the share of each status per generated test."""
    record = run_record(terminalreporter.config)
    if record is None or not record.generated:
        return
    terminalreporter.section("katapult-conformance: generated cases by status")
    for name, statuses in record.generated.items():
        total = sum(statuses.values())
        shares = ", ".join(f"{status}: {count * 100 / total:.0f}%" for status, count in sorted(statuses.items()))
        terminalreporter.write_line(f"{name}: {total} cases" + (f"; {shares}" if shares else ""))
