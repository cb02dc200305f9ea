"""Hand-written scenarios: each documented promise of allocate_ip, against whichever target is selected."""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from conformance.cases.rate_limit import provoke, sender
from conformance.cases.scenarios import ROWS, Row, RunValues, ip_for, judge_row, request_for
from conformance.contract.checks import ConformanceFailure, body_unusable, conforms_to_fragment, expect_error, moved, side_effect
from conformance.contract.findings import NotReached, charge_elsewhere, reach, require
from conformance.contract.ids import (
    INTERFACE_FROM_PATH,
    IP_ALREADY_ALLOCATED,
    NO_SIDE_EFFECTS,
    RATE_LIMIT_HEADERS,
    RATE_LIMIT_REACHED,
    SEMANTICS_200,
    SERVICE_UNAVAILABLE,
    SHAPE_200,
)
from conformance.contract.outcomes import NotProvoked
from conformance.contract.promises import OptedOut
from conformance.gate.ledger import AllocationLedger
from conformance.gate.session import ConformanceSession
from conformance.setup.fixtures import Credential, IPRef, TargetFixtures
from conformance.wire import api
from conformance.wire.exchange import Change, error_code, error_detail
from conformance.wire.pacing import Burst, remaining_of
from conformance.wire.paths import ALLOCATE_PATH, READ_INTERFACE_PATH
from conformance.wire.transport import RATE_WINDOW_SECONDS, Target, TargetError


def row_param(row: Row) -> Any:
    """A row as a test parameter, marked with its promise (and "no side effects" when it watches IPs)."""
    promises = (row.promise, NO_SIDE_EFFECTS) if row.watch else (row.promise,)
    return pytest.param(row, marks=pytest.mark.promise(*promises), id=row.id)


@pytest.fixture(scope="session")
def run_values(conformance_session: ConformanceSession) -> RunValues:
    """Made-up ids and tokens for this run."""
    return RunValues(conformance_session.run_id)


@pytest.mark.parametrize("row", [row_param(row) for row in ROWS])
def test_scenario(row: Row, target: Target, target_fixtures: TargetFixtures, ledger: AllocationLedger, run_values: RunValues,
                  conformance_session: ConformanceSession) -> None:
    """One row of the scenario table: provoke, judge, and check that no watched IP moved."""
    conformance_session.refuse_doubted(*row.needs())
    require(*row.depends)
    path, content, headers, query = request_for(row, target_fixtures, run_values)
    watched = [ip_for(target_fixtures, name) for name in row.watch]
    before = {ip: ledger.touch(ip) for ip in watched}
    response = target.send("POST", path, content=content, headers=headers, params=query or None)
    try:
        judge_row(row, response)
    except ConformanceFailure as failure:
        told = tell_moves(failure, ledger, before, response)
        if told is failure:
            raise
        raise told from None
    reach(row.promise)
    assert_unchanged(ledger, before, response)


def tell_moves(failure: ConformanceFailure, ledger: AllocationLedger, before: dict[IPRef, str | None],
               response: httpx.Response) -> ConformanceFailure:
    """A request that moved a watched IP (a 200 where a refusal was owed): the failure whose reproduce line says which, and puts it
    back as cleanup would (this one when nothing moved)."""
    try:
        moves = [(ip, holder, now) for ip, holder in before.items() if (now := ledger.holder(ip)) != holder]
    except TargetError:
        return failure  # the failure stands as it is; cleanup reads the IPs again
    if not moves:
        return failure
    return failure.moved(response, Change("it moves " + "; ".join(moved(ip, holder, now) for ip, holder, now in moves),
                                       " && ".join(ledger.fix_command(ip, holder, now) for ip, holder, now in moves)))


def assert_unchanged(ledger: AllocationLedger, before: dict[IPRef, str | None], response: httpx.Response) -> None:
    """A rejected request left every watched IP with the holder it had."""
    for ip, holder in before.items():
        now = ledger.holder(ip)
        if now != holder:
            raise side_effect(ip, now, holder, response, ledger.fix_command(ip, holder, now))


def assert_allocated(response: httpx.Response, interface_id: str, ip: IPRef, ledger: AllocationLedger, machine: str | None,
                     held_before: set[tuple[str, str]] | None) -> None:
    """A 200 returns the interface asked for, listing the IP beside those it held before; the IP is now held by its virtual machine."""
    # `machine` None: the token may not read interfaces and no answer named this one's virtual machine yet, so this 200 is the
    # first to name it (and the IP read must agree with it). `held_before` None: the interface's IPs could not be read first.
    body_unusable(response, conforms_to_fragment(response, status_expected=True))
    if response.status_code != 200:
        raise ConformanceFailure("Expected 200", f"{response.status_code} {error_code(response)}", "200 with the interface", response,
                                 check="status and code")
    interface = response.json()["virtual_machine_network_interface"]
    if interface["id"] != interface_id:
        raise ConformanceFailure("200 returns another interface", str(interface["id"]), interface_id, response, promise=SEMANTICS_200)
    named = str(interface["virtual_machine"]["id"])
    if machine is not None and named != machine:
        raise ConformanceFailure("200 names another virtual machine", named, f"{machine}, the interface's virtual machine", response,
                                 promise=SEMANTICS_200)
    listed = api.listed_ips(response)
    if (ip.id, ip.address) not in listed:
        raise ConformanceFailure(
            "Allocated IP missing from ip_addresses", repr(sorted(listed)), f"contains {ip.id} {ip.address}", response, promise=SEMANTICS_200
        )
    if held_before is not None and not held_before <= listed:
        raise ConformanceFailure("200 drops IPs the interface held", f"ip_addresses lacks {sorted(held_before - listed)}",
                                 "every IP the interface held before, plus the new one", response, promise=SEMANTICS_200)
    permitted = int(response.headers.get("X-RateLimit-Permitted", "0") or 0)
    remaining = int(response.headers.get("X-RateLimit-Remaining", "0") or 0)
    if remaining > permitted > 0:
        raise ConformanceFailure("X-RateLimit-Remaining above X-RateLimit-Permitted", str(remaining), f"<= {permitted}", response,
                                 promise=RATE_LIMIT_HEADERS)
    holder = ledger.holder(ip)
    expected = machine if machine is not None else named
    if holder != expected:
        whose = f"the virtual machine of {interface_id}" + ("" if machine is not None else ", as this 200 names it")
        raise ConformanceFailure(
            "IP not held by the interface's virtual machine", f"{ip.id} held by {holder or 'nobody'}", f"held by {expected} ({whose})",
            response, promise=SEMANTICS_200
        )


def not_yet_allocated(ledger: AllocationLedger, ip: IPRef) -> None:
    """An allocatable IP must be free before a test allocates it; held now, an earlier deviation (see cleanup) took it."""
    holder = ledger.touch(ip)
    if holder is not None:
        raise NotReached(f"{ip.id} ({ip.address}) is listed as allocatable but is held by {holder}: an earlier allocation was not undone"
                         " (see cleanup), or the target fixtures list a held IP")


def held_ips(target: Target, credential: Credential, interface_id: str) -> set[tuple[str, str]]:
    """The IPs an interface holds now, read before allocating so the 200 can be checked to still list them."""
    response = api.read_interface(target, credential, interface_id)
    if response.status_code != 200:
        raise NotReached(f"GET {READ_INTERFACE_PATH} answered {response.status_code} {error_code(response)}; the token in"
                    " credentials.valid must be able to read network_interface.id")
    return api.listed_ips(response)


def allocate_and_judge(target: Target, fixtures: TargetFixtures, ledger: AllocationLedger, session: ConformanceSession, ip: IPRef,
                       send: Callable[[Credential, str], httpx.Response]) -> None:
    """Allocate a free IP to the interface (as `send` asks for it) and judge the 200: shape, semantics, holder, prior IPs."""
    credential = fixtures.credential("valid")
    interface_id = fixtures.network_interface_id
    not_yet_allocated(ledger, ip)
    machine = session.machine_of(interface_id)
    # A token that may not read interfaces (least privilege) cannot list their IPs first: that one check is left out.
    before = held_ips(target, credential, interface_id) if session.interfaces.read_refused is None else None
    assert_allocated(send(credential, interface_id), interface_id, ip, ledger, machine, before)


@pytest.mark.promise(SHAPE_200, SEMANTICS_200)
@pytest.mark.parametrize("lookup", ["id", "address"])
def test_allocate_free_ip(lookup: str, target: Target, target_fixtures: TargetFixtures, ledger: AllocationLedger,
                          conformance_session: ConformanceSession) -> None:
    """Allocating a free IP (by id, or by address) returns the interface in the documented shape; its virtual machine now holds it."""
    ip = target_fixtures.allocatable_ip(1 if lookup == "address" and len(target_fixtures.allocatable) > 1 else 0)
    allocate_and_judge(target, target_fixtures, ledger, conformance_session, ip,
                       lambda credential, interface_id: api.allocate(target, credential, interface_id, {lookup: getattr(ip, lookup)}))


@pytest.mark.promise(INTERFACE_FROM_PATH, SEMANTICS_200)
def test_interface_from_path_segment(target: Target, target_fixtures: TargetFixtures, ledger: AllocationLedger,
                                     conformance_session: ConformanceSession) -> None:
    """A body with only ip_address, posted to the interface's own id as the path segment, allocates to that interface."""
    ip = target_fixtures.allocatable_ip(0)

    def send(credential: Credential, interface_id: str) -> httpx.Response:
        path = ALLOCATE_PATH.replace("/virtual_machine_network_interface/", f"/{interface_id}/")
        return target.send("POST", path, credential=credential, json={"ip_address": {"id": ip.id}})

    allocate_and_judge(target, target_fixtures, ledger, conformance_session, ip, send)


@pytest.mark.promise(IP_ALREADY_ALLOCATED, NO_SIDE_EFFECTS)
def test_ip_held_by_the_other_machine_is_refused(target: Target, target_fixtures: TargetFixtures, ledger: AllocationLedger,
                                                 conformance_session: ConformanceSession) -> None:
    """An IP the other interface's virtual machine just took gets 422 ip_already_allocated here, and stays with that machine."""
    credential = target_fixtures.credential("valid")
    ip = target_fixtures.allocatable_ip(0)
    other = conformance_session.other_interface()
    require(SEMANTICS_200)
    not_yet_allocated(ledger, ip)
    taken = api.allocate(target, credential, other, {"id": ip.id})
    if taken.status_code != 200:
        charge_elsewhere(ConformanceFailure("Allocating a free IP to the other interface failed", f"{taken.status_code} {error_code(taken)}",
                                            "200", taken, promise=SEMANTICS_200, check="allocation"))
    response = api.allocate(target, credential, target_fixtures.network_interface_id, {"id": ip.id})
    try:
        judge_held_refusal(response, ip, other, ledger, conformance_session)
    except ConformanceFailure as failure:
        # Alone, the request would allocate a free IP: its reproduction gives the IP to the other interface first, as the test did.
        told = failure
        with contextlib.suppress(TargetError):
            now = ledger.holder(ip)
            told = failure.moved(response, Change(f"{ip.id} ({ip.address}) goes to {other}, then is held by {now or 'nobody'}",
                                                  ledger.fix_command(ip, ledger.started.get(ip), now), first=taken.request))
        if told is failure:
            raise
        raise told from None


def judge_held_refusal(response: httpx.Response, ip: IPRef, other: str, ledger: AllocationLedger, session: ConformanceSession) -> None:
    """The allocation of an IP the other interface's machine holds is refused with 422 ip_already_allocated, and the IP stays there."""
    if response.status_code == 200:
        # Learnt from the answers, the two virtual machines may only now be known to be one: then no refusal was owed.
        session.check_other_machine(other)
    expect_error(response, 422, "ip_already_allocated")
    holder, machine = ledger.holder(ip), session.machine_of(other)
    if machine is None:
        raise NotReached(f"the virtual machine of {other} is unknown: credentials.valid may not read interfaces and the 200 allocating"
                         " to it named none (see the 200 shape findings)")
    if holder != machine:
        raise ConformanceFailure("Refused allocation moved the IP", f"{ip.id} held by {holder or 'nobody'}",
                                 f"still held by {machine} (the other interface's virtual machine)", response, promise=NO_SIDE_EFFECTS)


@pytest.mark.promise(RATE_LIMIT_REACHED)
def test_rate_limit_reached(target: Target, target_fixtures: TargetFixtures, run_values: RunValues,
                            conformance_session: ConformanceSession) -> None:
    """A concurrent burst sized from X-RateLimit-Remaining gets 429 rate_limit_reached within one window; total_permitted matches."""
    if target_fixtures.provoke_rate_limit is False:
        raise OptedOut("rate_limit.provoke: false")
    if not target_fixtures.provoke_rate_limit:
        raise NotProvoked(f"not provoked: needs rate_limit.provoke: true in the target fixtures ({target_fixtures.source})")
    require(RATE_LIMIT_HEADERS)
    # The run bursts where the pacer would wait anyway (conformance.cases.rate_limit): that burst is judged here, else this test bursts.
    target.pacer.on_window_spent = None
    window_end = conformance_session.window_end_burst
    provoked = window_end.provoked if window_end is not None else None
    if provoked is None:
        send = sender(target, target_fixtures.credential("valid"), run_values.value("unknown_interface"), run_values.value("unknown_ip"))
        try:
            provoked = provoke(send)
        finally:
            wait_for_new_window(target, send)
    first, result = provoked.first, provoked.burst
    if result is None:
        charge_elsewhere(ConformanceFailure("No X-RateLimit-Remaining past authentication", "a 404 without X-RateLimit-Remaining",
                                            "X-RateLimit-Remaining on every response past authentication", first,
                                            promise=RATE_LIMIT_HEADERS, check="header X-RateLimit-Remaining"))
    if result.limited is None:
        raise ConformanceFailure(
            "No 429 past the rate limit", f"{result.sent} requests answered without a 429 (Remaining seen: {describe_remaining(result)})",
            f"429 rate_limit_reached once the {remaining_of(first)} remaining requests of the window are spent", first)
    response = result.limited
    expect_error(response, 429, "rate_limit_reached")
    total = error_detail(response).get("total_permitted")
    header = first.headers.get("X-RateLimit-Permitted")
    if header is not None and str(total) != header:
        raise ConformanceFailure("total_permitted disagrees with X-RateLimit-Permitted", str(total), header, response)


def describe_remaining(result: Burst) -> str:
    """The range of Remaining a burst saw, for a failure message."""
    seen = result.remaining_seen
    return f"from {seen[0]} down to {min(seen)}, last {seen[-1]}" if seen else "none"


def wait_for_new_window(target: Target, send: Callable[[], httpx.Response]) -> None:
    """Leave the target usable: wait for the window's end, then poll with growing gaps until the token is served again."""
    waited, gap = 0.0, 1.0
    while waited < RATE_WINDOW_SECONDS:
        # The first request names the token whose window is waited for; its answer says whether the wait is over.
        response = send()
        if response.status_code != 429:
            return
        if waited == 0.0:
            ends_in = target.pacer.window_ends_in(response.request.headers) + 1.0
            target.pacer.sleep(ends_in)
            waited = ends_in
            continue
        target.pacer.sleep(gap)
        waited += gap
        gap = min(gap * 2, RATE_WINDOW_SECONDS - waited + 0.5)


@pytest.mark.promise(SERVICE_UNAVAILABLE)
def test_service_unavailable(target: Target, target_fixtures: TargetFixtures, conformance_session: ConformanceSession,
                             ledger: AllocationLedger) -> None:
    """In maintenance, a valid request gets 503 service_unavailable (mock); on a live target any 503 seen is judged."""
    if target.mock is None:
        seen = conformance_session.seen_503
        if not seen:
            raise NotProvoked("not provoked: a live target cannot be put into maintenance, and no 503 was seen in this run")
        for response in seen:
            expect_error(response, 503, "service_unavailable")
        return
    credential = target_fixtures.credential("valid")
    ip = target_fixtures.allocatable_ip(0)
    ledger.touch(ip)
    target.mock.maintenance = True
    try:
        response = api.allocate(target, credential, target_fixtures.network_interface_id, {"id": ip.id})
    finally:
        target.mock.maintenance = False
    expect_error(response, 503, "service_unavailable")
