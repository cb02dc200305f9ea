"""The pytest plugin: options, the resolved target in the header, and the target/ledger fixtures."""
from __future__ import annotations

import contextlib
import secrets
import signal
import threading
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from types import FrameType

import httpx
import pytest
import yaml
from hypothesis import settings
from hypothesis._settings import local_settings

from conformance import checks
from conformance.collection import targets_suite
from conformance.config import OPTIONS, ConfigError, SuiteConfig, build_config
from conformance.findings import FindingLog, Scope, report
from conformance.ledger import AllocationLedger, Drift
from conformance.machines import InterfaceMachines
from conformance.mock.app import VirtualClock
from conformance.mock.mutants import mock_class
from conformance.mock.world import DEFAULT_WORLD, load_world
from conformance.observed import WireProfile
from conformance.preflight import SETUP_ERROR_EXIT, Preflight, preflight, stop_message
from conformance.profiles import session_seed, suite_settings
from conformance.promises import MARKER
from conformance.ratelimit import RateLimitMonitor
from conformance.redact import REDACT
from conformance.requestlog import RequestLog
from conformance.target import BudgetExhausted, Target, TargetError, live_target, mock_target
from conformance.targetfile import FixturesError, MissingFixture, TargetFixtures, UnusableFixture, load_target_fixtures

# The end-of-run summary, baseline and redaction hooks, the host-independent collection, xdist support and the live
# status line live in their own modules; xdist is registered first so its trylast pytest_configure runs before the reporter's.
pytest_plugins = ("conformance.xdist", "conformance.reporting", "conformance.collection", "conformance.progress")

CONFIG_KEY = pytest.StashKey[SuiteConfig]()
FIXTURES_KEY = pytest.StashKey[TargetFixtures]()
SESSION_KEY = pytest.StashKey["ConformanceSession"]()
SEED_KEY = pytest.StashKey[int]()
FINDINGS_KEY = pytest.StashKey[FindingLog]()
SETTINGS_KEY = pytest.StashKey[settings]()
PREFLIGHT_KEY = pytest.StashKey[Preflight]()


@dataclass
class ConformanceSession:
    """What the whole run shares: the target, the ledger, and what the end-of-run checks found."""

    target: Target
    ledger: AllocationLedger
    run_id: str
    fixtures: TargetFixtures
    drifts: list[Drift] = field(default_factory=list)
    seen_503: list[httpx.Response] = field(default_factory=list)
    rate_limit_monitor: RateLimitMonitor = field(default_factory=RateLimitMonitor)
    wire: WireProfile = field(default_factory=WireProfile)
    generated: dict[str, Counter[int]] = field(default_factory=dict)
    # Requests the preflight sent before the tests (not in target.sent, which is the tests' own).
    preflight_requests: int = 0
    # Each interface's virtual machine: read where the token may, else learnt from allocate_ip's 200s.
    interfaces: InterfaceMachines = field(init=False)

    def __post_init__(self) -> None:
        self.interfaces = InterfaceMachines(self.target, self.fixtures.credential("valid"))

    def machine_of(self, interface_id: str) -> str | None:
        """The interface's virtual machine (the holder its allocations show); None while unreadable (scope) and unnamed by a 200."""
        return self.interfaces.of(interface_id)

    def other_interface(self) -> str:
        """The other interface; a skip naming the key and why when it is known to be on the same virtual machine."""
        other = self.fixtures.other_interface()
        self.check_other_machine(other)
        return other

    def check_other_machine(self, other: str) -> None:
        """UnusableFixture once both virtual machines are known and are one; while one is unknown there is nothing to say yet."""
        mine, theirs = self.machine_of(self.fixtures.network_interface_id), self.machine_of(other)
        if mine is not None and mine == theirs:
            raise UnusableFixture("other_network_interface.id", (
                f"{other} is on the same virtual machine ({mine}) as network_interface.id, and the API names an IP's holder"
                f" by virtual machine, so the two cannot be told apart; name an interface of another virtual machine"
                f" in {self.fixtures.source}"))

    def observe(self, response: httpx.Response) -> None:
        """Keep every 503 seen anywhere in the run, to be judged against the fragment."""
        if response.status_code == 503:
            self.seen_503.append(response)


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
    from conformance.reporting import start_reporter

    cli = {option.dest: config.getoption(f"conformance_{option.dest}") for option in OPTIONS}
    try:
        suite = build_config(cli)
        fixtures = load_target_fixtures(suite.fixtures_path)
        if not suite.is_live:
            mock_class(suite.mock_mutant)
            check_world(suite)
    except (ConfigError, FixturesError, ValueError) as error:
        raise pytest.UsageError(f"katapult-conformance: {error}") from None
    if suite.is_live:
        interrupt_on_sigterm(config)
    REDACT.add(fixtures.secrets())
    # Requests presenting these get past the rate limiter, so their argument errors must carry X-RateLimit-*.
    checks.AUTHENTICATED.update(credential.headers["Authorization"] for key, credential in fixtures.credentials.items()
                                if key in ("valid", "without_scope") and "Authorization" in credential.headers)
    config.stash[CONFIG_KEY] = suite
    config.stash[FIXTURES_KEY] = fixtures
    config.stash[SETTINGS_KEY] = suite_settings(suite.profile, suite.max_examples)
    given_seed = config.getoption("hypothesis_seed", None)
    config.stash[SEED_KEY] = session_seed(suite.profile, int(given_seed) if given_seed is not None else None)
    start_reporter(config)


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    """Past --max-duration a test is not started; the budget running out while its fixtures are set up skips it too."""
    session = item.config.stash.get(SESSION_KEY, None)
    if session is not None and session.target.out_of_time() and is_conformance_item(item):
        pytest.skip(str(session.target.out_of_time_error()))
    try:
        return (yield)
    except (MissingFixture, BudgetExhausted) as cannot_run:
        pytest.skip(str(cannot_run))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """A suite test runs under the suite's hypothesis settings; lacking a fixture entry or request budget, it is skipped saying why."""
    if not is_active(item.config) or not uses_suite(item):
        return (yield)
    try:
        if not is_conformance_item(item):
            return (yield)
        with local_settings(item.config.stash[SETTINGS_KEY]):
            return (yield)
    except (MissingFixture, BudgetExhausted) as cannot_run:
        pytest.skip(str(cannot_run))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """The budget running out in a teardown that is not cleanup (cleanup is never budgeted) skips, naming the option."""
    try:
        return (yield)
    except BudgetExhausted as cannot_run:
        pytest.skip(str(cannot_run))


def check_world(suite: SuiteConfig) -> None:
    """A --mock-world file that cannot be loaded is a usage error now, not at the first test."""
    if suite.mock_world is None:
        return
    try:
        load_world(suite.mock_world)
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise ConfigError(f"cannot load the mock world {suite.mock_world} ({type(error).__name__}: {error}); fix it or drop --mock-world") from None


def interrupt_on_sigterm(config: pytest.Config) -> None:
    """CI runners stop jobs with SIGTERM: treat it like Ctrl-C, so the allocations are still undone and verified."""
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    config.add_cleanup(restore)


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
    probe = make_target(suite)
    machines = InterfaceMachines(probe, fixtures.credential("valid"))
    try:
        with contextlib.suppress(TargetError):
            machines.of(fixtures.network_interface_id, budgeted=False)
    finally:
        probe.close()
    return machines.describe()


def reproduce_command(config: pytest.Config, test_name: str) -> str:
    """The command that replays a generated test's failure: same test, profile, seed and target (never a secret)."""
    suite = config.stash[CONFIG_KEY]
    parts = ["pytest --pyargs conformance", f"-k '{test_name}'", f"--conformance-profile {suite.profile}",
             f"--hypothesis-seed={config.stash[SEED_KEY]}"]
    if suite.max_examples is not None:
        parts.append(f"--conformance-max-examples {suite.max_examples}")
    if suite.is_live:
        parts += [f"--target-url {suite.target_url}", f"--target-fixtures {suite.fixtures_path}"]
    elif suite.mock_mutant:
        parts.append(f"--mock-mutant {suite.mock_mutant}")
    return " ".join(parts)


def make_target(suite: SuiteConfig) -> Target:
    """The mock (optionally a mutant) or the live URL, per the settings."""
    if suite.is_live:
        return live_target(suite.target_url, timeout=suite.request_timeout, max_requests=suite.max_requests, max_rate=suite.max_rate,
                           max_duration=suite.max_duration, ca_bundle=str(suite.ca_bundle) if suite.ca_bundle else None)
    clock = VirtualClock()
    mock = mock_class(suite.mock_mutant)(load_world(suite.mock_world or DEFAULT_WORLD), clock=clock)
    return mock_target(mock, clock, timeout=suite.request_timeout)


def is_conformance_item(item: pytest.Item) -> bool:
    """Whether a collected test belongs to the suite (not to whatever else the session runs)."""
    module = getattr(item, "module", None)
    return module is not None and module.__name__.startswith("conformance.")


def uses_suite(item: pytest.Item) -> bool:
    """Whether a test is the suite's or opts in to it: it declares a promise, or uses one of this plugin's fixtures."""
    if is_conformance_item(item) or item.get_closest_marker(MARKER) is not None:
        return True
    fixture_info = getattr(item, "_fixtureinfo", None)
    definitions = getattr(fixture_info, "name2fixturedefs", {})
    return any(getattr(defs[-1].func, "__module__", None) == __name__ for defs in definitions.values() if defs)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Before any test on a live target: the preflight checks the setup; a wrong one stops the run with exit 6, one line per problem."""
    suite = session.config.stash.get(CONFIG_KEY, None)
    if suite is None or not suite.is_live or session.config.option.collectonly or not any(is_conformance_item(item) for item in session.items):
        return
    probe = make_target(suite)
    wire = WireProfile()
    probe.observers.append(wire.observe)
    try:
        found = preflight(probe, session.config.stash[FIXTURES_KEY])
    except TargetError as error:
        raise pytest.UsageError(f"katapult-conformance: {error}") from None
    finally:
        probe.close()
    session.config.stash[PREFLIGHT_KEY] = found
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not found.ok:
        if reporter is not None:
            reporter.write_line(stop_message(found), red=True)
        pytest.exit(f"katapult-conformance: the setup is wrong, no test was run (exit {SETUP_ERROR_EXIT})", returncode=SETUP_ERROR_EXIT)
    if reporter is not None:
        reporter.write_line(f"katapult-conformance preflight: setup ok ({found.requests} requests)")
        reporter.write_line(f"katapult-conformance preflight: interface virtual machines from {found.machine_source}")
        for note in found.notes:
            reporter.write_line(f"katapult-conformance preflight note: {note}")
        reporter.write_line(f"katapult-conformance target showed: {wire.describe()}")


@pytest.fixture(scope="session")
def conformance_session(request: pytest.FixtureRequest) -> Iterator[ConformanceSession]:
    """Create the target once per run; at the end, undo and verify every allocation the suite made."""
    config = request.config
    suite = config.stash[CONFIG_KEY]
    fixtures = config.stash[FIXTURES_KEY]
    target = make_target(suite)
    target.pacer.on_stall = report_stalled_rate_limit
    monitor = RateLimitMonitor(clock=target.pacer.now, window_seconds=target.pacer.window_seconds)
    session = ConformanceSession(target, AllocationLedger(target, fixtures.credential("valid")), secrets.token_hex(6), fixtures,
                                 rate_limit_monitor=monitor)
    target.observers += [session.observe, session.rate_limit_monitor.observe, session.wire.observe, session.interfaces.learn,
                         session.ledger.observe]
    request_log = RequestLog(suite.request_log, session.run_id) if suite.request_log else None
    if request_log is not None:
        target.observers.append(request_log.observe)
    config.stash[SESSION_KEY] = session
    # While the suite's session lives, what its own requests see between tests is recorded, not raised at every test.
    Scope.between_tests = config.stash.get(FINDINGS_KEY, None)
    found = config.stash.get(PREFLIGHT_KEY, None)
    session.preflight_requests = found.requests if found is not None else 0
    record_starting_state(session, found)
    yield session
    try:
        left = session.ledger.verify()
        session.drifts = [*session.ledger.moved_unasked, *left]
    except TargetError as error:
        session.drifts = [Drift(ip, started, f"unknown ({error})") for ip, started in session.ledger.started.items()]
    finally:
        Scope.between_tests = None
        target.close()
        if request_log is not None:
            request_log.close()
    if not session.drifts:
        return
    if request.session.shouldstop or request.session.shouldfail:
        # Stopped early (--maxfail, -x): pytest tears this down in its own sessionfinish, where a failure is a crash.
        # The summary's cleanup verdict fails on these drifts; the terminal names them now.
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(cleanup_message(session), red=True)
        return
    pytest.fail(cleanup_message(session), pytrace=False)


def record_starting_state(session: ConformanceSession, found: Preflight | None) -> None:
    """Every fixture IP's holder before the first test (read by the preflight on a live target), and where each can go back to."""
    # Where the token may not read interfaces, their virtual machines (and so the ways home) are learnt from allocate_ip's 200s.
    ledger, fixtures, interfaces = session.ledger, session.fixtures, session.interfaces
    fixture_interfaces = [interface for interface in (fixtures.network_interface_id, fixtures.other_network_interface_id) if interface]
    interfaces.on_learn.append(lambda interface, machine: ledger.add_home(interface, machine) if interface in fixture_interfaces else None)
    if found is not None:
        ledger.start(found.holders)
        for interface, read in found.machines.items():
            interfaces.add(interface, read)
        if found.interface_read_refused is not None:
            interfaces.refused(found.interface_read_refused)
    ledger.read_start(fixtures.known_ips())
    for interface in fixture_interfaces:
        # A target that cannot say an interface's machine is judged by the tests that need it; cleanup just knows less.
        with contextlib.suppress(TargetError):
            machine = interfaces.of(interface, budgeted=False)
            if machine is not None:
                ledger.add_home(interface, machine)
            else:
                ledger.add_unplaced(interface)


def cleanup_message(session: ConformanceSession) -> str:
    """Why the end-of-run check failed: IPs the target moved unasked (put back now), and IPs that could not be put back."""
    lines = []
    unasked = session.ledger.moved_unasked
    if unasked:
        lines.append("the target moved IPs that no test left changed (they are put back now):")
        lines += [f"  {drift}" for drift in unasked]
    left = [drift for drift in session.drifts if drift not in unasked]
    if left:
        lines.append("katapult-conformance left the target changed; these IPs are not back in their starting state:")
        lines += [f"  {drift}" for drift in left]
    return "\n".join(lines)


def report_stalled_rate_limit(message: str, response: httpx.Response) -> None:
    """Rate-limit headers that never recover are a finding of their promise; pacing goes on by X-RateLimit-Permitted alone."""
    report(checks.ConformanceFailure("X-RateLimit-Remaining does not recover", message, "Remaining back up after one window", response,
                                     promise=checks.RATE_LIMIT_HEADERS, check="X-RateLimit-Remaining recovers"))


@pytest.fixture(scope="session")
def target_fixtures(request: pytest.FixtureRequest) -> TargetFixtures:
    """The target's test data."""
    return request.config.stash[FIXTURES_KEY]


@pytest.fixture(scope="session")
def target(conformance_session: ConformanceSession) -> Target:
    """The target every request goes through."""
    return conformance_session.target


@pytest.fixture
def ledger(conformance_session: ConformanceSession) -> Iterator[AllocationLedger]:
    """The allocation ledger; whatever a test allocated is undone when it ends, pass or fail."""
    yield conformance_session.ledger
    drifts = conformance_session.ledger.restore()
    if drifts:
        pytest.fail("could not restore: " + "; ".join(str(drift) for drift in drifts), pytrace=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How far generation reached: the share of each status per generated test."""
    session = terminalreporter.config.stash.get(SESSION_KEY, None)
    if session is None or not session.generated:
        return
    terminalreporter.section("katapult-conformance: generated cases by status")
    for name, statuses in session.generated.items():
        total = sum(statuses.values())
        shares = ", ".join(f"{status}: {count * 100 / total:.0f}%" for status, count in sorted(statuses.items()))
        terminalreporter.write_line(f"{name}: {total} cases; {shares}")
