"""What one run shares: the target, the ledger, what each interface's virtual machine is, and the starting state to restore."""
from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from conformance.contract.findings import NotReached
from conformance.gate.ledger import AllocationLedger
from conformance.gate.machines import InterfaceMachines
from conformance.gate.putback import Drift
from conformance.setup.fixtures import TargetFixtures, UnusableFixture
from conformance.setup.settings import SuiteConfig
from conformance.wire.pacing import RateLimitMonitor
from conformance.wire.profile import WireProfile
from conformance.wire.retry import NetworkHealth
from conformance.wire.transport import Target, TargetError, live_target

if TYPE_CHECKING:
    from conformance.cases.rate_limit import WindowEndBurst

    # A live run's alone: a mock run never imports the preflight.
    from conformance.gate.preflight import Doubt, Preflight


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
    # A run provoking the 429: the burst the pacer makes where it would wait for a window's end (cases.rate_limit).
    window_end_burst: WindowEndBurst | None = None
    # What the preflight doubts (a setup mistake or a server fault): nothing is sent with those fixture entries.
    doubts: list[Doubt] = field(default_factory=list)

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

    def withheld(self) -> set[str]:
        """The fixture keys the preflight doubts, which no test may use."""
        return {doubt.key for doubt in self.doubts}

    def refuse_doubted(self, *keys: str) -> None:
        """Stop a test that would use a fixture entry the preflight doubts: its finding already fails the promise concerned."""
        for doubt in self.doubts:
            if doubt.key in keys:
                raise NotReached(f"the preflight doubts {doubt.key} (a finding of {doubt.promise}): nothing is sent with it")

    def record(self) -> RunRecord:
        """What this session did, for the end of the run."""
        target = self.target
        return RunRecord(target.is_live, target.sent, target.statuses, target.throttled, self.preflight_requests, bool(self.ledger.started),
                         self.drifts, self.generated, self.wire, preflights=1 if self.preflight_requests else 0,
                         unchecked=tuple(ip.id for ip in self.ledger.unchecked), network=target.health,
                         shared_token=list(target.pacer.shared))

    def observe(self, response: httpx.Response) -> None:
        """Keep every 503 seen anywhere in the run, to be judged against the fragment."""
        if response.status_code == 503:
            self.seen_503.append(response)


@dataclass
class RunRecord:
    """What the end of a run is judged and reported from; built from a session, or on the xdist controller from every worker's."""

    live: bool
    sent: int
    statuses: Counter[int]
    throttled: int
    preflight: int
    # Whether the run watched any IP (then cleanup is judged), and the IPs not back in their starting state.
    watched: bool
    drifts: list[Drift]
    generated: dict[str, Counter[int]]
    wire: WireProfile
    # How many preflights `preflight` counts (one a run: under xdist, the controller's), and the requests of the xdist
    # controller's read-back after every worker finished: with `sent` and `preflight`, every request the target received.
    preflights: int = 1
    end_of_run: int = 0
    # Fixture IPs the end-of-run check did not read (a second interrupt): it judged nothing of them.
    unchecked: tuple[str, ...] = ()
    # What the requests met on the network: retries and why, requests that never got an answer.
    network: NetworkHealth = field(default_factory=NetworkHealth)
    # What pacing saw of the token's other clients: a window spent before the run saw it begin, a Remaining that did not recover.
    shared_token: list[str] = field(default_factory=list)


def make_target(suite: SuiteConfig, seed: int = 0) -> Target:
    """The mock (optionally a mutant) or the live URL, per the settings; `seed` makes the jitter of the retries' backoff."""
    # A live run never loads the mock; a mock run's client is handed the mock's transport, so it builds no TLS, reads no proxy.
    if suite.target_url is not None:
        return live_target(suite.target_url, timeout=suite.request_timeout, max_requests=suite.max_requests, max_rate=suite.max_rate,
                           max_duration=suite.max_duration, ca_bundle=str(suite.ca_bundle) if suite.ca_bundle else None,
                           retries=suite.request_retries, seed=seed)
    from conformance.mock.inprocess import embedded_target

    return embedded_target(suite.mock_mutant, suite.mock_world, suite.request_timeout, retries=suite.request_retries, seed=seed)


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
    unasked = [drift for drift in session.drifts if drift.put_back]
    if unasked:
        lines.append("the target moved IPs that no test left changed (they are put back now):")
        lines += [f"  {drift}" for drift in unasked]
    left = [drift for drift in session.drifts if not drift.put_back]
    if left:
        lines.append("katapult-conformance left the target changed; these IPs are not back in their starting state:")
        lines += [f"  {drift}" for drift in left]
    return "\n".join(lines)
