"""The reference mock, through the in-process target the suite uses: every documented answer, for the right reason."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
import pytest
import schemathesis

from conformance.contract.checks import SPEC_PATH, conforms_to_fragment
from conformance.mock.app import ReferenceMock, VirtualClock
from conformance.setup.fixtures import Credential, TargetFixtures
from conformance.wire.exchange import error_code, error_detail
from conformance.wire.paths import ALLOCATE_PATH, READ_IP_PATH, UNALLOCATE_PATH
from conformance.wire.transport import Target

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NOT_JSON = b'{"virtual_machine_network_interface": {"id": '
UNKNOWN_INTERFACE = "vmnet_doesNotExist0001"
UNKNOWN_IP = "ip_doesNotExist000001"
UNKNOWN_ADDRESS = "192.0.2.77"
RANDOM_TOKEN = "kmock-this-token-does-not-exist"
PERMITTED = 1000
WINDOW_SECONDS = 60.0

Body = Callable[[TargetFixtures], Any]


def body(ip: Callable[[TargetFixtures], Any], interface: Callable[[TargetFixtures], Any] = lambda f: f.network_interface_id) -> Body:
    """A body template: the interface lookup id and the ip_address lookup, from the fixtures."""
    return lambda f: {"virtual_machine_network_interface": {"id": interface(f)}, "ip_address": ip(f)}


# Bodies naming real IPs: each would change an allocation if the request were (wrongly) accepted.
FREE_BY_ID = body(lambda f: {"id": f.allocatable[0].id})
FREE_BY_ADDRESS = body(lambda f: {"address": f.allocatable[1].address})
AMBIGUOUS = body(lambda f: {"id": f.allocatable[0].id, "address": f.allocatable[1].address})
HELD_ELSEWHERE = body(lambda f: {"id": f.ip("allocated_elsewhere").id})
HELD_ELSEWHERE_BY_ADDRESS = body(lambda f: {"address": f.ip("allocated_elsewhere").address})
OTHER_NETWORK = body(lambda f: {"id": f.ip("invalid_for_interface").id})
UNKNOWN_INTERFACE_FREE_IP = body(lambda f: {"id": f.allocatable[0].id}, interface=lambda f: UNKNOWN_INTERFACE)
UNKNOWN_INTERFACE_HELD_IP = body(lambda f: {"id": f.ip("allocated_elsewhere").id}, interface=lambda f: UNKNOWN_INTERFACE)


@dataclass(frozen=True)
class Ask:
    """A request to allocate_ip: who asks (a credential key, None, or raw headers) and what they send."""

    credential: str | None = "valid"
    body: Body = FREE_BY_ID
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    path: str = ALLOCATE_PATH


@dataclass(frozen=True)
class Rejection:
    """A request and the error it must get, with the detail fields it must carry."""

    id: str
    ask: Ask
    status: int
    code: str
    detail: dict[str, Any] = field(default_factory=dict)
    setup: tuple[str, ...] = ()


def credential(fixtures: TargetFixtures, key: str | None) -> Credential | None:
    """The named credential from the mock's target fixtures (`random`: a token the mock does not know)."""
    if key is None:
        return None
    if key == "random":
        return Credential.bearer("random", RANDOM_TOKEN)
    return fixtures.credential(key)


def allocate(api: Target, fixtures: TargetFixtures, ask: Ask) -> httpx.Response:
    """Send the request; the answer must conform to the fragment (conformance.contract.checks.conforms_to_fragment)."""
    cred = credential(fixtures, ask.credential)
    if ask.raw is not None:
        headers = {"Content-Type": "application/json", **ask.headers}
        answer = api.send("POST", ask.path, credential=cred, content=ask.raw, headers=headers)
    else:
        answer = api.send("POST", ask.path, credential=cred, json=ask.body(fixtures), headers=ask.headers)
    conforms_to_fragment(answer)
    return answer


def allocations(mock: ReferenceMock) -> dict[str, str | None]:
    """Who holds each IP in the mock's world."""
    return {ip.id: ip.allocated_to for ip in mock.world.ips.values()}


def use_up_window(api: Target, fixtures: TargetFixtures, key: str) -> None:
    """Spend the token's whole rate-limit window (unpaced, so the virtual clock stays still)."""
    cred = credential(fixtures, key)
    request = {"virtual_machine_network_interface": {"id": UNKNOWN_INTERFACE}, "ip_address": {"id": UNKNOWN_IP}}
    first = api.send("POST", ALLOCATE_PATH, credential=cred, json=request, paced=False)
    for _ in range(int(first.headers["X-RateLimit-Remaining"])):
        api.send("POST", ALLOCATE_PATH, credential=cred, json=request, paced=False)


def prepare(api: Target, mock: ReferenceMock, fixtures: TargetFixtures, setup: tuple[str, ...]) -> None:
    """Put the mock in a state: `rate_limited:<credential key>` spends that token's window; `maintenance` switches it on."""
    for step in setup:
        name, _, key = step.partition(":")
        if name == "rate_limited":
            use_up_window(api, fixtures, key)
        elif name == "maintenance":
            mock.maintenance = True
        else:
            raise AssertionError(f"unknown setup step {step}")


def expect_rejected(api: Target, mock: ReferenceMock, fixtures: TargetFixtures, case: Rejection) -> httpx.Response:
    """The request gets the case's error, with its detail, and changes no allocation."""
    prepare(api, mock, fixtures, case.setup)
    before = allocations(mock)
    answer = allocate(api, fixtures, case.ask)
    assert (answer.status_code, error_code(answer)) == (case.status, case.code), answer.text
    assert answer.headers["X-Api-Schema"] == "json-error"
    assert error_detail(answer).items() >= case.detail.items(), answer.text
    assert allocations(mock) == before
    return answer


def invalid_argument(path: list[str], issue: str) -> dict[str, Any]:
    """The detail fields an invalid_argument answer must carry."""
    return {"path": path, "issue": issue, "index": None, "errors": []}


ERRORS = [
    Rejection("missing-token", Ask(credential=None), 400, "missing_api_token"),
    Rejection("non-bearer-scheme", Ask(credential=None, headers={"Authorization": "Token kmock-valid-7d1e0c5a9b"}), 400, "missing_api_token"),
    Rejection("empty-bearer", Ask(credential=None, headers={"Authorization": "Bearer "}), 400, "missing_api_token"),
    Rejection("invalid-token", Ask(credential="random"), 403, "invalid_api_token", {"details": None}),
    Rejection("unauthorized-network", Ask(credential="network_restricted"), 403, "unauthorized_network_for_api_token", {"ip_address": "127.0.0.1"}),
    Rejection("invalid-capabilities", Ask(credential="invalid_capabilities"), 403, "invalid_capabilities_token"),
    Rejection("scope-not-granted", Ask(credential="without_scope"), 403, "scope_not_granted", {"scopes": ["ip_addresses"]}),
    Rejection("interface-not-found", Ask(body=UNKNOWN_INTERFACE_FREE_IP), 404, "virtual_machine_network_interface_not_found"),
    Rejection("ip-not-found-by-id", Ask(body=body(lambda f: {"id": UNKNOWN_IP})), 404, "ip_address_not_found"),
    Rejection("ip-not-found-by-address", Ask(body=body(lambda f: {"address": UNKNOWN_ADDRESS})), 404, "ip_address_not_found"),
    Rejection("ip-id-null", Ask(body=body(lambda f: {"id": None})), 404, "ip_address_not_found"),
    Rejection("ip-already-allocated-by-id", Ask(body=HELD_ELSEWHERE), 422, "ip_already_allocated"),
    Rejection("ip-already-allocated-by-address", Ask(body=HELD_ELSEWHERE_BY_ADDRESS), 422, "ip_already_allocated"),
    Rejection("invalid-ip", Ask(body=OTHER_NETWORK), 422, "invalid_ip"),
    Rejection("empty-lookup", Ask(body=body(lambda f: {})), 400, "invalid_argument", invalid_argument(["ip_address"], "missing_lookup_value")),
    Rejection("unknown-keys-only", Ask(body=body(lambda f: {"ip": f.allocatable[0].address})), 400, "invalid_argument",
              invalid_argument(["ip_address"], "missing_lookup_value")),
    Rejection("empty-interface-lookup", Ask(body=lambda f: {"virtual_machine_network_interface": {}, "ip_address": {"id": f.allocatable[0].id}}),
              400, "invalid_argument", invalid_argument(["virtual_machine_network_interface"], "missing_lookup_value")),
    Rejection("ambiguous", Ask(body=AMBIGUOUS), 400, "invalid_argument", invalid_argument(["ip_address"], "ambiguous_lookup_values")),
    Rejection("ambiguous-same-ip", Ask(body=body(lambda f: {"id": f.allocatable[0].id, "address": f.allocatable[0].address})), 400,
              "invalid_argument", invalid_argument(["ip_address"], "ambiguous_lookup_values")),
    Rejection("object-expected", Ask(body=body(lambda f: f.allocatable[0].id)), 400, "invalid_argument",
              invalid_argument(["ip_address"], "object_expected")),
    Rejection("invalid-scalar", Ask(body=body(lambda f: {"id": 12345})), 400, "invalid_argument",
              invalid_argument(["ip_address", "id"], "invalid_scalar")),
    Rejection("missing-ip-argument", Ask(body=lambda f: {"virtual_machine_network_interface": {"id": f.network_interface_id}}), 400,
              "missing_required_argument", {"path": ["ip_address"]}),
    Rejection("invalid-json-body", Ask(raw=NOT_JSON), 400, "invalid_json_body"),
    Rejection("maintenance", Ask(), 503, "service_unavailable", setup=("maintenance",)),
]

ORDER = [
    Rejection("no-token+broken-body", Ask(credential=None, raw=NOT_JSON), 400, "missing_api_token"),
    Rejection("non-bearer+broken-body", Ask(credential=None, raw=NOT_JSON, headers={"Authorization": "Token kmock-valid-7d1e0c5a9b"}),
              400, "missing_api_token"),
    Rejection("invalid-token+broken-body", Ask(credential="random", raw=NOT_JSON), 403, "invalid_api_token"),
    Rejection("invalid-capabilities+ambiguous", Ask(credential="invalid_capabilities", body=AMBIGUOUS), 403, "invalid_capabilities_token"),
    Rejection("unauthorized-network+broken-body", Ask(credential="network_restricted", raw=NOT_JSON), 403, "unauthorized_network_for_api_token"),
    Rejection("no-scope+broken-body", Ask(credential="without_scope", raw=NOT_JSON), 403, "scope_not_granted"),
    Rejection("no-scope+ambiguous", Ask(credential="without_scope", body=AMBIGUOUS), 403, "scope_not_granted"),
    Rejection("no-scope+unknown-interface", Ask(credential="without_scope", body=UNKNOWN_INTERFACE_FREE_IP), 403, "scope_not_granted"),
    Rejection("maintenance+no-scope", Ask(credential="without_scope"), 503, "service_unavailable", setup=("maintenance",)),
    Rejection("maintenance+broken-body", Ask(raw=NOT_JSON), 503, "service_unavailable", setup=("maintenance",)),
    Rejection("maintenance+no-token", Ask(credential=None), 400, "missing_api_token", setup=("maintenance",)),
    Rejection("maintenance+invalid-token", Ask(credential="random"), 403, "invalid_api_token", setup=("maintenance",)),
    Rejection("rate-limited+maintenance", Ask(), 429, "rate_limit_reached", setup=("rate_limited:valid", "maintenance")),
    Rejection("rate-limited+no-scope", Ask(credential="without_scope"), 429, "rate_limit_reached", setup=("rate_limited:without_scope",)),
    Rejection("rate-limited+broken-body", Ask(raw=NOT_JSON), 429, "rate_limit_reached", setup=("rate_limited:valid",)),
    Rejection("ambiguous+unknown-interface", Ask(body=body(lambda f: {"id": f.allocatable[0].id, "address": f.allocatable[1].address},
                                                            interface=lambda f: UNKNOWN_INTERFACE)), 400, "invalid_argument"),
    Rejection("missing-ip-argument+unknown-interface", Ask(body=lambda f: {"virtual_machine_network_interface": {"id": UNKNOWN_INTERFACE}}), 400,
              "missing_required_argument"),
    Rejection("unknown-interface+unknown-ip", Ask(body=body(lambda f: {"id": UNKNOWN_IP}, interface=lambda f: UNKNOWN_INTERFACE)), 404,
              "virtual_machine_network_interface_not_found"),
    Rejection("unknown-interface+held-ip", Ask(body=UNKNOWN_INTERFACE_HELD_IP), 404, "virtual_machine_network_interface_not_found"),
]


@pytest.mark.parametrize("case", ERRORS, ids=[case.id for case in ERRORS])
def test_documented_error(case: Rejection, mock_api: Target, reference_mock: ReferenceMock, mock_target_fixtures: TargetFixtures) -> None:
    """Each documented error, for its reason, with its detail; the world is unchanged afterwards."""
    expect_rejected(mock_api, reference_mock, mock_target_fixtures, case)


@pytest.mark.parametrize("case", ORDER, ids=[case.id for case in ORDER])
def test_order_of_checks(case: Rejection, mock_api: Target, reference_mock: ReferenceMock, mock_target_fixtures: TargetFixtures) -> None:
    """With two faults at once, the earlier check in the real server's order answers; the world is unchanged."""
    expect_rejected(mock_api, reference_mock, mock_target_fixtures, case)


@pytest.mark.parametrize("ask", [Ask(body=FREE_BY_ID), Ask(body=FREE_BY_ADDRESS)], ids=["by-id", "by-address"])
def test_allocate_free_ip(ask: Ask, mock_api: Target, reference_mock: ReferenceMock, mock_target_fixtures: TargetFixtures) -> None:
    """A free IP (by id or by address) is allocated: 200, the interface lists it, the world holds it there."""
    interface = mock_target_fixtures.network_interface_id
    lookup = ask.body(mock_target_fixtures)["ip_address"]
    ip = next(ip for ip in mock_target_fixtures.allocatable if lookup in ({"id": ip.id}, {"address": ip.address}))
    assert allocations(reference_mock)[ip.id] is None
    answer = allocate(mock_api, mock_target_fixtures, ask)
    assert answer.status_code == 200, answer.text
    returned = answer.json()["virtual_machine_network_interface"]
    assert returned["id"] == interface
    assert {"id": ip.id, "address": ip.address} in returned["ip_addresses"]
    assert allocations(reference_mock)[ip.id] == interface
    assert "X-Api-Schema" not in answer.headers
    assert UUID.match(answer.headers["X-Request-Id"])
    assert (answer.headers["X-RateLimit-Permitted"], answer.headers["X-RateLimit-Remaining"]) == (str(PERMITTED), str(PERMITTED - 1))


def test_allocate_through_underscore_path(mock_api: Target, reference_mock: ReferenceMock, mock_target_fixtures: TargetFixtures) -> None:
    """The path's middle segment is a route parameter: `/_/allocate_ip` allocates too, the body's lookup wins."""
    answer = allocate(mock_api, mock_target_fixtures, Ask(path="/virtual_machine_network_interfaces/_/allocate_ip"))
    assert answer.status_code == 200, answer.text
    assert allocations(reference_mock)[mock_target_fixtures.allocatable[0].id] == mock_target_fixtures.network_interface_id


def test_null_address_beside_id_is_not_ambiguous(mock_api: Target, reference_mock: ReferenceMock, mock_target_fixtures: TargetFixtures) -> None:
    """`{"id": x, "address": null}` is a lookup by id: the IP is allocated."""
    ip = mock_target_fixtures.allocatable[0]
    answer = allocate(mock_api, mock_target_fixtures, Ask(body=body(lambda f: {"id": ip.id, "address": None})))
    assert answer.status_code == 200, answer.text
    assert allocations(reference_mock)[ip.id] == mock_target_fixtures.network_interface_id


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", ALLOCATE_PATH), ("DELETE", ALLOCATE_PATH), ("POST", ALLOCATE_PATH + "s"), ("POST", "/nothing_here")],
    ids=["get-allocate", "delete-allocate", "misspelt-path", "unknown-path"],
)
def test_route_not_found(method: str, path: str, mock_api: Target, reference_mock: ReferenceMock, mock_target_fixtures: TargetFixtures) -> None:
    """A wrong method or an unknown path gets 404 route_not_found, wrapped, and allocates nothing."""
    before = allocations(reference_mock)
    answer = mock_api.send(method, path, credential=mock_target_fixtures.credential("valid"), json=FREE_BY_ID(mock_target_fixtures))
    assert (answer.status_code, error_code(answer)) == (404, "route_not_found")
    assert answer.headers["Content-Type"] == "application/json"
    assert allocations(reference_mock) == before


def test_rate_limit_reached_after_window_is_used_up(mock_api: Target, reference_mock: ReferenceMock, mock_target_fixtures: TargetFixtures) -> None:
    """Request PERMITTED+1 in one window gets 429 with total_permitted equal to X-RateLimit-Permitted, and changes nothing."""
    case = Rejection("rate-limited", Ask(), 429, "rate_limit_reached", {"total_permitted": PERMITTED}, setup=("rate_limited:valid",))
    answer = expect_rejected(mock_api, reference_mock, mock_target_fixtures, case)
    assert error_detail(answer) == {"total_permitted": PERMITTED}
    assert (answer.headers["X-RateLimit-Permitted"], answer.headers["X-RateLimit-Remaining"]) == (str(PERMITTED), "0")


def test_rate_limit_window_resets_after_60_seconds(mock_api: Target, virtual_clock: VirtualClock, mock_target_fixtures: TargetFixtures) -> None:
    """The window is per token; just before 60 s the token is still limited, at 60 s a new window serves it."""
    use_up_window(mock_api, mock_target_fixtures, "valid")
    assert allocate(mock_api, mock_target_fixtures, Ask(credential="without_scope")).status_code == 403
    virtual_clock.advance(WINDOW_SECONDS - 0.5)
    assert allocate(mock_api, mock_target_fixtures, Ask()).status_code == 429
    virtual_clock.advance(0.5)
    answer = allocate(mock_api, mock_target_fixtures, Ask())
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-RateLimit-Remaining"] == str(PERMITTED - 1)


def test_maintenance_off_again_serves(mock_api: Target, reference_mock: ReferenceMock, mock_target_fixtures: TargetFixtures) -> None:
    """The maintenance switch only holds while it is on."""
    reference_mock.maintenance = True
    assert allocate(mock_api, mock_target_fixtures, Ask()).status_code == 503
    reference_mock.maintenance = False
    assert allocate(mock_api, mock_target_fixtures, Ask()).status_code == 200


def test_reset_restores_the_world(
    mock_api: Target, reference_mock: ReferenceMock, virtual_clock: VirtualClock, mock_target_fixtures: TargetFixtures
) -> None:
    """reset() undoes allocations, rate-limit windows and maintenance."""
    pristine = allocations(ReferenceMock(clock=virtual_clock))
    assert allocate(mock_api, mock_target_fixtures, Ask(body=FREE_BY_ID)).status_code == 200
    assert allocate(mock_api, mock_target_fixtures, Ask(body=FREE_BY_ADDRESS)).status_code == 200
    unallocate(mock_api, mock_target_fixtures, mock_target_fixtures.ip("allocated_elsewhere").id)
    reference_mock.maintenance = True
    assert allocations(reference_mock) != pristine
    reference_mock.reset()
    assert allocations(reference_mock) == pristine
    answer = allocate(mock_api, mock_target_fixtures, Ask())
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-RateLimit-Remaining"] == str(PERMITTED - 1)


# --- the support operations ------------------------------------------------------------------------------------


@cache
def support_operation(path: str, method: str) -> Any:
    """A support operation of the fragment, loaded by schemathesis."""
    return schemathesis.openapi.from_path(str(SPEC_PATH))[path][method]


def read(api: Target, fixtures: TargetFixtures, query: dict[str, str], key: str | None = "valid") -> httpx.Response:
    """GET /ip_addresses/ip_address; the answer must validate against the fragment's read operation."""
    answer = api.send("GET", READ_IP_PATH, credential=credential(fixtures, key), params=query)
    if answer.status_code in (200, 404):
        support_operation(READ_IP_PATH, "GET").validate_response(answer)
    return answer


def unallocate(api: Target, fixtures: TargetFixtures, ip_id: str, key: str | None = "valid") -> httpx.Response:
    """POST /ip_addresses/ip_address/unallocate; the answer must validate against the fragment's operation."""
    answer = api.send("POST", UNALLOCATE_PATH, credential=credential(fixtures, key), json={"ip_address": {"id": ip_id}})
    if answer.status_code in (200, 404, 409, 422):
        support_operation(UNALLOCATE_PATH, "POST").validate_response(answer)
    return answer


@pytest.mark.parametrize("by", ["id", "address"])
def test_read_ip(by: str, mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """Reading an IP (by id or address) tells whether and where it is allocated."""
    free, held = mock_target_fixtures.allocatable[0], mock_target_fixtures.ip("allocated_elsewhere")
    free_answer = read(mock_api, mock_target_fixtures, {f"ip_address[{by}]": getattr(free, by)})
    assert free_answer.status_code == 200
    assert free_answer.json()["ip_address"]["id"] == free.id
    assert free_answer.json()["allocation"] is None
    held_answer = read(mock_api, mock_target_fixtures, {f"ip_address[{by}]": getattr(held, by)})
    # Held through the other interface, so by that interface's virtual machine (mock-world.yaml): no interface id appears.
    assert held_answer.json()["allocation"] == {"type": "VirtualMachine", "value": {"id": "vm_mockBravo00000001", "name": "mock-bravo"}}
    assert held_answer.json()["ip_address"]["allocation_id"] == "vm_mockBravo00000001"
    assert held_answer.json()["ip_address"]["allocation_type"] == "VirtualMachine"
    assert "vmnet_" not in held_answer.text


def test_read_unknown_ip(mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """Reading an IP that does not exist gets 404 ip_address_not_found."""
    answer = read(mock_api, mock_target_fixtures, {"ip_address[id]": UNKNOWN_IP})
    assert (answer.status_code, error_code(answer)) == (404, "ip_address_not_found")


def test_allocation_is_visible_and_undone_through_the_support_operations(
    mock_api: Target, reference_mock: ReferenceMock, mock_target_fixtures: TargetFixtures
) -> None:
    """After a 200 the read shows the interface; unallocate answers 200 {} and the read shows it free again."""
    ip = mock_target_fixtures.allocatable[0]
    assert allocate(mock_api, mock_target_fixtures, Ask(body=FREE_BY_ID)).status_code == 200
    shown = read(mock_api, mock_target_fixtures, {"ip_address[id]": ip.id}).json()["allocation"]
    assert shown == {"type": "VirtualMachine", "value": {"id": "vm_mockAlpha00000001", "name": "mock-alpha"}}
    answer = unallocate(mock_api, mock_target_fixtures, ip.id)
    assert (answer.status_code, answer.json()) == (200, {})
    assert read(mock_api, mock_target_fixtures, {"ip_address[id]": ip.id}).json()["allocation"] is None
    assert allocations(reference_mock)[ip.id] is None


@pytest.mark.parametrize(
    ("ip_id", "key", "status", "code"),
    [("free", "valid", 422, "no_allocation"), (UNKNOWN_IP, "valid", 404, "ip_address_not_found"), ("held", None, 400, "missing_api_token"),
     ("held", "without_scope", 403, "scope_not_granted")],
    ids=["not-allocated", "unknown-ip", "no-token", "no-scope"],
)
def test_unallocate_rejected(
    ip_id: str, key: str | None, status: int, code: str, mock_api: Target, reference_mock: ReferenceMock, mock_target_fixtures: TargetFixtures
) -> None:
    """Unallocate refuses a free IP (422 no_allocation), an unknown one, and callers who fail the gate; nothing changes."""
    held = mock_target_fixtures.ip("allocated_elsewhere")
    real = {"free": mock_target_fixtures.allocatable[0].id, "held": held.id}.get(ip_id, ip_id)
    before = allocations(reference_mock)
    answer = unallocate(mock_api, mock_target_fixtures, real, key)
    assert (answer.status_code, error_code(answer)) == (status, code), answer.text
    assert allocations(reference_mock) == before


def test_error_bodies_are_json(mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """Every error answer is a JSON object with error.code, error.description and error.detail."""
    answer = allocate(mock_api, mock_target_fixtures, Ask(credential=None))
    assert set(json.loads(answer.content)["error"]) == {"code", "description", "detail"}
