"""Generated property tests: the fragment drives generation, the suite's target sends, the shared checks judge."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given, note, reject, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from conformance.cases.generation import (
    GeneratedRequest,
    KnownValues,
    ambiguous_lookup_classes,
    any_body,
    body_classes,
    requests,
    valueless_lookup_classes,
)
from conformance.cases.identities import FIXTURE_IDENTITIES, available_identities, identity_headers
from conformance.contract.checks import ConformanceFailure, body_unusable, conforms_to_fragment, expect_error, expect_issue, side_effect
from conformance.contract.findings import charge_elsewhere, require
from conformance.contract.ids import (
    CLEANUP,
    INVALID_API_TOKEN,
    IP_ALREADY_ALLOCATED,
    MISSING_API_TOKEN,
    MUTUAL_EXCLUSIVITY,
    NO_SIDE_EFFECTS,
    ORDER_OF_CHECKS,
    RATE_LIMIT_HEADERS,
    RESPONSE_SHAPE,
    SCOPE_NOT_GRANTED,
    SEMANTICS_200,
)
from conformance.contract.outcomes import NotProvoked
from conformance.contract.promises import PROMISES
from conformance.gate.keys import SEED_KEY
from conformance.gate.ledger import AllocationLedger
from conformance.gate.network import Stopped
from conformance.gate.plugin import reproduce_command
from conformance.gate.session import ConformanceSession
from conformance.setup.fixtures import IPRef, MissingFixture, TargetFixtures
from conformance.setup.profiles import failing_case_printed
from conformance.wire import api
from conformance.wire.paths import ALLOCATE_PATH
from conformance.wire.transport import AnswerLost, Target, TargetGone

# The promises every response's checks speak for: the generated tests that judge any response exist for all of them.
# Derived from the catalogue (every promise judged by checks, not by a test's own end); the response shape first, as the promise a
# failure that names none is charged to.
WIRE_PROMISES = (RESPONSE_SHAPE, *(promise.id for promise in PROMISES if promise.by_checks and promise.id != RESPONSE_SHAPE))
# The scenario promise each refused identity's answer belongs to: when it already deviates, order cannot be told apart.
IDENTITY_PROMISES = {"none": MISSING_API_TOKEN, "non_bearer": MISSING_API_TOKEN, "random": INVALID_API_TOKEN,
                     "without_scope": SCOPE_NOT_GRANTED}
AUTH_FAILURES = {"none": (400, "missing_api_token"), "non_bearer": (400, "missing_api_token"), "random": (403, "invalid_api_token"),
                 "without_scope": (403, "scope_not_granted")}


class Sender:
    """Sends generated requests through the target and keeps what the suite allocated undone."""

    def __init__(self, session: ConformanceSession, fixtures: TargetFixtures, ledger: AllocationLedger, name: str,
                 run: Callable[[Any], None]) -> None:
        self.run = run
        self.session = session
        self.target = session.target
        self.fixtures = fixtures
        self.ledger = ledger
        self.run_id = session.run_id
        self.statuses: Counter[int] = session.generated.setdefault(name, Counter())
        # Many requests per example on the in-process mock (hypothesis' per-example cost dominates there);
        # one per example on a live target, where each request costs real time and rate limit.
        self.batch = (1, 1) if self.target.is_live else (4, 8)

    def send(self, request: GeneratedRequest) -> httpx.Response:
        """Send one generated request; a 200 is undone at once so every example starts from the same state."""
        note(f"request {request.describe()}")
        headers = identity_headers(request.identity, self.fixtures, self.run_id)
        with unjudged_when_lost():
            if request.raw is not None:
                headers["Content-Type"] = "application/json"
                response = self.target.send("POST", ALLOCATE_PATH, content=request.raw, headers=headers)
            else:
                response = self.target.send("POST", ALLOCATE_PATH, json=request.body, headers=headers)
        self.statuses[response.status_code] += 1
        if response.status_code == 200:
            self.undo(response.request)
        return response

    def undo(self, request: httpx.Request) -> None:
        """Put back what a generated request allocated: the IPs it names, or every fixture IP when it names none."""
        named = self.ledger.named(request)
        if not named:
            self.ledger.restore(list(self.ledger.started))
        for ip in sorted(named, key=lambda ip: ip.id):
            self.ledger.undo(ip)

    def holders(self, ips: list[IPRef]) -> dict[IPRef, str | None]:
        """Who holds each of these IPs now."""
        return {ip: self.ledger.holder(ip) for ip in ips}

    def assert_holders_unchanged(self, before: dict[IPRef, str | None], title: str) -> None:
        """Every IP in `before` still has the holder it had."""
        after = self.holders(list(before))
        if after != before:
            raise ConformanceFailure(title, repr(after), repr(before), promise=NO_SIDE_EFFECTS, check="allocations unchanged")


@contextmanager
def unjudged_when_lost() -> Iterator[None]:
    """An answer the network lost after the server may have acted leaves that one example unjudged (what it moved is put back
    by the ledger, which read it); a target gone stops the run at once, not after hypothesis replays the example."""
    try:
        yield
    except AnswerLost:
        reject()
    except TargetGone as gone:
        raise Stopped(str(gone)) from None


@pytest.fixture
def seeded(request: pytest.FixtureRequest) -> Callable[[Any], None]:
    """Run a hypothesis test with the session's seed; a failure gains the command that replays it."""
    session_seed = request.config.stash[SEED_KEY]
    command = reproduce_command(request.config, request.node.name)

    def run(test: Any) -> None:
        try:
            with failing_case_printed():
                seed(session_seed)(test)()
        except Exception as failure:
            # A failure only: an interrupt (or a skip) is nothing to reproduce.
            failure.add_note(f"Seed: {session_seed}. Reproduce: {command}")
            raise

    return run


@pytest.fixture
def known(target_fixtures: TargetFixtures) -> KnownValues:
    """The target's real ids and addresses, for generation."""
    return KnownValues.from_fixtures(target_fixtures)


@pytest.fixture
def sender(request: pytest.FixtureRequest, conformance_session: ConformanceSession, target_fixtures: TargetFixtures,
           ledger: AllocationLedger, seeded: Callable[[Any], None]) -> Sender:
    """A sender whose statuses are counted under the test's name."""
    return Sender(conformance_session, target_fixtures, ledger, request.node.name, seeded)


# On a live target each request costs rate limit and real time, and the in-process run covers the input space in full:
# there a property draws a LIVE_SHARE of the profile's examples, and a property probing one refusal sends each class of
# request it knows LIVE_ROUNDS times (a class per request, every class in every round) instead of drawing at random.
LIVE_SHARE = 3
LIVE_ROUNDS = 2
MIN_LIVE_EXAMPLES = 5


def live_examples(examples: int) -> int:
    """How many of a property's examples a live run draws."""
    return max(MIN_LIVE_EXAMPLES, examples // LIVE_SHARE)


def draw_and_send(sender: Sender, strategy: st.SearchStrategy[GeneratedRequest], judge: Any,
                  classes: Sequence[st.SearchStrategy[GeneratedRequest]] = ()) -> None:
    """Run a property: draw a batch of requests, send each, judge each response (batches shrink like any list).

    `classes`, for a refusal property, split the strategy's space: live, each batch holds one request of every class.
    """
    smallest, largest = sender.batch
    batches: st.SearchStrategy[Sequence[GeneratedRequest]] = st.lists(strategy, min_size=smallest, max_size=largest)
    examples = None
    if sender.target.is_live:
        if classes:
            batches, examples = st.tuples(*classes), LIVE_ROUNDS
        else:
            examples = live_examples(settings().max_examples)

    @given(batches)
    def property_(batch: Sequence[GeneratedRequest]) -> None:
        for request in batch:
            judge(request, sender.send(request))

    if examples is not None:
        property_ = settings(max_examples=examples)(property_)
    sender.run(property_)


@pytest.mark.promise(*WIRE_PROMISES)
def test_every_response_conforms(sender: Sender, known: KnownValues, target_fixtures: TargetFixtures) -> None:
    """Any request (valid, invalid or not JSON, as any identity) gets a documented status, JSON and a valid body."""
    strategy = requests(known, available_identities(target_fixtures, sender.session.withheld()))
    draw_and_send(sender, strategy, lambda request, response: conforms_to_fragment(response))


@pytest.mark.promise(ORDER_OF_CHECKS, NO_SIDE_EFFECTS)
@pytest.mark.parametrize("identity", sorted(AUTH_FAILURES))
def test_auth_before_arguments(identity: str, sender: Sender, known: KnownValues, target_fixtures: TargetFixtures) -> None:
    """Whatever the body, a request without a usable token or scope is refused for that, never 2xx."""
    if identity in FIXTURE_IDENTITIES:
        target_fixtures.credential(identity)
        sender.session.refuse_doubted(f"credentials.{identity}")
    require(IDENTITY_PROMISES[identity])
    status, code = AUTH_FAILURES[identity]
    before = sender.holders(list(target_fixtures.allocatable))
    def as_identity(request: GeneratedRequest) -> GeneratedRequest:
        return GeneratedRequest(identity, request.body, request.raw)

    classes = [strategy.map(as_identity) for strategy in body_classes(known)]
    draw_and_send(sender, any_body(known).map(as_identity), lambda request, response: expect_error(response, status, code), classes)
    sender.assert_holders_unchanged(before, "Refused requests changed allocations")


def as_request(fixtures: TargetFixtures) -> Callable[[dict[str, Any]], GeneratedRequest]:
    """An ip_address lookup as the valid identity's request to allocate it to the fixture interface."""
    return lambda lookup: GeneratedRequest("valid", api.allocate_body(fixtures.network_interface_id, lookup))


@pytest.mark.promise(MUTUAL_EXCLUSIVITY, NO_SIDE_EFFECTS)
def test_exclusivity_two_values_are_ambiguous(sender: Sender, known: KnownValues, target_fixtures: TargetFixtures) -> None:
    """An ip_address lookup with two or more non-null values is 400 ambiguous_lookup_values and allocates nothing."""
    named = list(target_fixtures.allocatable)
    before = sender.holders(named)

    def judge(request: GeneratedRequest, response: httpx.Response) -> None:
        expect_issue(response, "ambiguous_lookup_values")

    classes = [lookups.map(as_request(target_fixtures)) for lookups in ambiguous_lookup_classes(known)]
    draw_and_send(sender, st.one_of(classes), judge, classes)
    sender.assert_holders_unchanged(before, "Ambiguous lookups changed allocations")


@pytest.mark.promise(MUTUAL_EXCLUSIVITY)
def test_exclusivity_no_value_is_missing(sender: Sender, known: KnownValues, target_fixtures: TargetFixtures) -> None:
    """An ip_address lookup naming none of its keys is 400 missing_lookup_value."""
    classes = [lookups.map(as_request(target_fixtures)) for lookups in valueless_lookup_classes(known)]
    draw_and_send(sender, st.one_of(classes), lambda request, response: expect_issue(response, "missing_lookup_value"), classes)


@pytest.mark.promise(*WIRE_PROMISES)
def test_schemathesis_generated_cases_conform(sender: Sender, target_fixtures: TargetFixtures) -> None:
    """Cases from schemathesis' own generation (positive and negative), half of them with the valid token, conform."""
    from schemathesis import GenerationMode

    from conformance.contract.checks import allocate_operation

    operation = allocate_operation()
    cases = st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                      operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))

    examples = max(10, settings().max_examples // 5)

    def as_request(drawn: tuple[Any, bool]) -> GeneratedRequest:
        case, with_token = drawn
        identity = "valid" if with_token else "none"
        body = case.body if not isinstance(case.body, bytes | bytearray) else None
        raw = bytes(case.body) if isinstance(case.body, bytes | bytearray) else None
        if raw is None and type(case.body).__name__ == "NotSet":
            raw = b""
        if not with_token and case.headers and "Authorization" in case.headers:
            identity = "random"
        return GeneratedRequest(identity, body, raw)

    # Drawn as a request, not as schemathesis' case (which prints as nothing): a failing example shows what was sent.
    @settings(max_examples=live_examples(examples) if sender.target.is_live else examples)
    @given(st.tuples(cases, st.booleans()).map(as_request))
    def property_(request: GeneratedRequest) -> None:
        response = sender.send(request)
        conforms_to_fragment(response)

    sender.run(property_)


@dataclass(frozen=True)
class MachineContext:
    """What the state machine needs; hypothesis builds machines without arguments."""

    target: Target
    fixtures: TargetFixtures
    ledger: AllocationLedger
    sender: Sender
    other_interface: str | None


class AllocationMachine(RuleBasedStateMachine):
    """A model of who holds each allocatable IP, checked against the target after every step."""

    ips = Bundle("ips")
    # Set on the subclass each test builds (hypothesis makes machines without arguments): nothing outlives the test.
    context: MachineContext

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[IPRef, str | None] = {}
        # The last step's response when the server refused it: a state change after it is a side effect, not a semantics failure.
        self.refused: httpx.Response | None = None
        # The last step's unallocate: an IP still held after it is the support operation failing (cleanup's promise).
        self.unallocated: httpx.Response | None = None

    @rule(target=ips, index=st.integers(min_value=0, max_value=100))
    def pick(self, index: int) -> IPRef:
        ip = self.context.fixtures.allocatable[index % len(self.context.fixtures.allocatable)]
        self.model.setdefault(ip, None)
        return ip

    def allocate_to(self, ip: IPRef, interface: str, by: str) -> None:
        # The API names holders by virtual machine, so the model does too.
        machine = self.context.sender.session.machine_of(interface)
        with unjudged_when_lost():
            response = api.allocate(self.context.target, self.context.fixtures.credential("valid"), interface, {by: getattr(ip, by)})
        if machine is None:
            # The token may not read interfaces: a 200 is the first answer to name this interface's virtual machine.
            machine = self.context.sender.session.machine_of(interface)
        self.context.sender.statuses[response.status_code] += 1
        holder = self.model.get(ip)
        self.refused = response if holder is not None and holder != machine else None
        self.unallocated = None
        if holder is None:
            body_unusable(response, conforms_to_fragment(response))
            if response.status_code != 200:
                raise ConformanceFailure("Allocating a free IP failed", str(response.status_code), "200", response)
            listed = {(item["id"], item["address"]) for item in response.json()["virtual_machine_network_interface"]["ip_addresses"]}
            if (ip.id, ip.address) not in listed:
                raise ConformanceFailure("Allocated IP missing from ip_addresses", repr(sorted(listed)), f"{ip.id} {ip.address}", response)
            self.model[ip] = machine or "(a virtual machine no answer named)"
        elif holder != machine:
            try:
                expect_error(response, 422, "ip_already_allocated")
            except ConformanceFailure as failure:
                # Refusing an IP held elsewhere is the 422's promise; the model cannot go on past it.
                charge_elsewhere(failure.replaced(promise=IP_ALREADY_ALLOCATED))
        # Asking again for an IP the same interface already holds is undocumented: nothing is asserted there.

    @rule(ip=ips, by=st.sampled_from(["id", "address"]))
    def allocate(self, ip: IPRef, by: str) -> None:
        self.allocate_to(ip, self.context.fixtures.network_interface_id, by)

    @rule(ip=ips, by=st.sampled_from(["id", "address"]))
    def allocate_to_other_interface(self, ip: IPRef, by: str) -> None:
        if self.context.other_interface is not None:
            self.allocate_to(ip, self.context.other_interface, by)

    @rule(ip=ips)
    def unallocate(self, ip: IPRef) -> None:
        if self.model.get(ip) is not None:
            with unjudged_when_lost():
                response = api.unallocate(self.context.target, self.context.fixtures.credential("valid"), ip)
            self.refused, self.unallocated = None, response
            if response.status_code != 200:
                raise ConformanceFailure("Unallocate failed", str(response.status_code), "200 {}", response)
            self.model[ip] = None

    @invariant()
    def target_agrees(self) -> None:
        for ip, holder in self.model.items():
            actual = self.context.ledger.holder(ip)
            if actual != holder and self.refused is not None:
                charge_elsewhere(side_effect(ip, actual, holder, self.refused, self.context.ledger.fix_command(ip, holder, actual)))
            if actual != holder and holder is None and self.unallocated is not None:
                charge_elsewhere(ConformanceFailure("Unallocate left the IP allocated", f"{ip.id} ({ip.address}) still held by {actual}",
                                                    "held by nobody", self.unallocated, promise=CLEANUP, check="unallocate"))
            if actual != holder:
                raise ConformanceFailure("Allocation state differs from the model", f"{ip.id} held by {actual or 'nobody'}",
                                         f"held by {holder or 'nobody'}")

    def teardown(self) -> None:
        self.context.ledger.restore()




def usable_other_interface(session: ConformanceSession) -> str | None:
    """The other interface when it is set and on another virtual machine; the model leaves it out otherwise."""
    try:
        return session.other_interface()
    except MissingFixture:
        return None


@pytest.mark.promise(SEMANTICS_200)
def test_stateful_allocation(sender: Sender, target_fixtures: TargetFixtures, ledger: AllocationLedger) -> None:
    """Allocate, allocate elsewhere (422), unallocate: the target always agrees with a model of who holds what."""
    target_fixtures.allocatable_ip(0)
    for ip in target_fixtures.allocatable:
        # The model starts with every allocatable IP free.
        ledger.touch_free(ip)
    context = MachineContext(sender.target, target_fixtures, ledger, sender, usable_other_interface(sender.session))
    machine = type("AllocationMachineOfThisTest", (AllocationMachine,), {"context": context})
    examples = max(10, settings().max_examples // 3)
    if sender.target.is_live:
        examples = live_examples(examples)
    run_state_machine_as_test(machine, settings=settings(max_examples=examples, stateful_step_count=8))


@pytest.mark.promise(RATE_LIMIT_HEADERS)
def test_rate_limit_headers(conformance_session: ConformanceSession) -> None:
    """Across every response of the run: X-RateLimit-Remaining never exceeds Permitted nor rises within a window."""
    problems = conformance_session.rate_limit_monitor.problems
    if conformance_session.rate_limit_monitor.seen == 0:
        raise NotProvoked("not provoked: no response in this run carried X-RateLimit-Remaining")
    if problems:
        raise ConformanceFailure("Rate-limit headers inconsistent", problems[0], "Remaining <= Permitted, counting down within a window")
