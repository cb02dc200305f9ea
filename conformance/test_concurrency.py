"""The target under concurrency: requests sent at the same moment, which a single-threaded client never sends."""
from __future__ import annotations

import httpx
import pytest

from conformance.cases.concurrency import Call, send_together
from conformance.cases.identities import identity_headers
from conformance.cases.scenarios import RunValues
from conformance.contract.checks import ConformanceFailure, body_unusable, conforms_to_fragment, expect_error
from conformance.contract.findings import require
from conformance.contract.ids import CONCURRENCY, IP_ALREADY_ALLOCATED, NO_SIDE_EFFECTS, RESPONSE_SHAPE, SEMANTICS_200, SHAPE_200
from conformance.gate.ledger import AllocationLedger
from conformance.gate.session import ConformanceSession
from conformance.setup.fixtures import TargetFixtures
from conformance.wire import api
from conformance.wire.exchange import error_code
from conformance.wire.paths import ALLOCATE_PATH
from conformance.wire.transport import Target


def answer(response: httpx.Response) -> str:
    """A response as the comparison sees it: status and error code."""
    code = error_code(response)
    return f"{response.status_code} {code}" if code else str(response.status_code)


def holders_of(response: httpx.Response) -> set[str]:
    """Who an allocation's 200 says now holds the IP: the interface and its virtual machine (the wire names either)."""
    interface = response.json()["virtual_machine_network_interface"]
    machine = interface.get("virtual_machine") or {}
    return {str(interface["id"]), *([str(machine["id"])] if machine.get("id") else [])}


# What one request alone must get right before concurrency can be told apart from it.
SINGLE_REQUEST_PROMISES = (SHAPE_200, SEMANTICS_200, IP_ALREADY_ALLOCATED, RESPONSE_SHAPE, NO_SIDE_EFFECTS)


@pytest.mark.promise(CONCURRENCY)
@pytest.mark.parametrize("lookup", ["id", "address"])
def test_one_free_ip_asked_for_twice_at_once_has_one_winner(lookup: str, target: Target, target_fixtures: TargetFixtures,
                                                             ledger: AllocationLedger, conformance_session: ConformanceSession) -> None:
    """Two interfaces (on two VMs) ask for one free IP at the same moment: one 200, one 422 ip_already_allocated, held by the winner."""
    credential = target_fixtures.credential("valid")
    interfaces = (target_fixtures.network_interface_id, conformance_session.other_interface())
    require(*SINGLE_REQUEST_PROMISES)
    ip = target_fixtures.allocatable_ip(0)
    ledger.touch_free(ip)
    calls = [Call(credential, json=api.allocate_body(interface, {lookup: getattr(ip, lookup)})) for interface in interfaces]
    responses = send_together(target, calls)
    for response in responses:
        body_unusable(response, conforms_to_fragment(response))
    seen = ", ".join(f"{interface}: {answer(response)}" for interface, response in zip(interfaces, responses, strict=True))
    winners = [index for index, response in enumerate(responses) if response.status_code == 200]
    if len(winners) == 2:
        # Learnt from the answers, the two virtual machines may only now be known to be one: then both may win.
        conformance_session.check_other_machine(interfaces[1])
    if len(winners) != 1:
        raise ConformanceFailure("Two concurrent allocations of one free IP", seen, "exactly one 200 and one 422 ip_already_allocated",
                                 responses[winners[-1] if winners else 0])
    winner, loser = responses[winners[0]], responses[1 - winners[0]]
    expect_error(loser, 422, "ip_already_allocated")
    if str(winner.json()["virtual_machine_network_interface"]["id"]) != interfaces[winners[0]]:
        raise ConformanceFailure("200 returns another interface", seen, f"the winner {interfaces[winners[0]]}", winner)
    holder = ledger.holder(ip)
    if holder not in holders_of(winner):
        raise ConformanceFailure("IP not held by the winner", f"{ip.id} held by {holder or 'nobody'} ({seen})",
                                 f"held by {' / '.join(sorted(holders_of(winner)))}", winner)


def burst(fixtures: TargetFixtures, run_values: RunValues) -> dict[str, Call]:
    """Valid requests with different answers, none depending on another: two allocations of two free IPs, and refusals."""
    valid = fixtures.credential("valid")
    interface = fixtures.network_interface_id
    ip0, ip1 = fixtures.allocatable_ip(0), fixtures.allocatable_ip(1)
    unknown_ip, unknown_interface = run_values.value("unknown_ip"), run_values.value("unknown_interface")
    calls = {
        "allocate ip0 by id": Call(valid, json=api.allocate_body(interface, {"id": ip0.id})),
        "allocate ip1 by address": Call(valid, json=api.allocate_body(interface, {"address": ip1.address})),
        "unknown ip": Call(valid, json=api.allocate_body(interface, {"id": unknown_ip})),
        "unknown interface": Call(valid, json=api.allocate_body(unknown_interface, {"id": unknown_ip})),
        "ambiguous lookup": Call(valid, json=api.allocate_body(interface, {"id": unknown_ip, "address": "192.0.2.123"})),
        "no token": Call(None, json=api.allocate_body(interface, {"id": ip0.id})),
        "unknown token": Call(None, json=api.allocate_body(interface, {"id": ip0.id}),
                              headers=identity_headers("random", fixtures, run_values.run_id)),
    }
    if fixtures.allocated_elsewhere is not None:
        calls["IP held elsewhere"] = Call(valid, json=api.allocate_body(interface, {"id": fixtures.allocated_elsewhere.id}))
    if fixtures.invalid_for_interface is not None:
        calls["IP of another network"] = Call(valid, json=api.allocate_body(interface, {"id": fixtures.invalid_for_interface.id}))
    return calls


@pytest.mark.promise(CONCURRENCY)
def test_concurrent_burst_is_answered_as_each_alone(target: Target, target_fixtures: TargetFixtures, ledger: AllocationLedger,
                                                    conformance_session: ConformanceSession) -> None:
    """A burst of valid requests sent at once gets no 5xx, and each the answer it gets alone; both free IPs end allocated."""
    require(*SINGLE_REQUEST_PROMISES)
    calls = burst(target_fixtures, RunValues(conformance_session.run_id))
    ips = [target_fixtures.allocatable_ip(0), target_fixtures.allocatable_ip(1)]
    for ip in ips:
        ledger.touch_free(ip)
    alone = {}
    for name, call in calls.items():
        response = target.send("POST", ALLOCATE_PATH, credential=call.credential, json=call.json, headers=call.headers)
        alone[name] = answer(response)
        if response.status_code == 200:
            for ip in ips:
                ledger.touch(ip)
            ledger.restore()
    for ip in ips:
        ledger.touch_free(ip)
    together = dict(zip(calls, send_together(target, list(calls.values())), strict=True))
    for response in together.values():
        body_unusable(response, conforms_to_fragment(response))
    differ = {name: f"{answer(response)} (alone: {alone[name]})" for name, response in together.items() if answer(response) != alone[name]}
    if differ:
        first = together[next(iter(differ))]
        raise ConformanceFailure("A concurrent burst is answered differently than each request alone",
                                 "; ".join(f"{name}: {text}" for name, text in differ.items()), "the same answers", first)
    interface = target_fixtures.network_interface_id
    for ip, name in zip(ips, ("allocate ip0 by id", "allocate ip1 by address"), strict=True):
        holder = ledger.holder(ip)
        if together[name].status_code == 200 and holder not in holders_of(together[name]):
            raise ConformanceFailure("IP not allocated after a concurrent burst", f"{ip.id} held by {holder or 'nobody'}",
                                     f"held by {interface}", together[name])
