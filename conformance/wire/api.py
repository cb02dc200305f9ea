"""The endpoint's requests in the suite's words: allocate, and the two support operations."""
from __future__ import annotations

from typing import Any

import httpx

from conformance.setup.fixtures import Credential, IPRef
from conformance.wire.exchange import error_code
from conformance.wire.paths import ALLOCATE_PATH, READ_INTERFACE_PATH, READ_IP_PATH, UNALLOCATE_PATH
from conformance.wire.transport import Target, TargetError

# The interface read's scopes (published API schema), which allocate_ip's own (ip_addresses) does not include.
INTERFACE_READ_SCOPES = ("virtual_machines", "virtual_machines:read")
ALLOCATE_SUFFIX = "/allocate_ip"


class InterfaceReadRefused(TargetError):
    """The token may not read interfaces (403 scope_not_granted); the message names the scope. Not a setup mistake."""


def allocate_body(interface_id: Any, ip_lookup: Any) -> dict[str, Any]:
    """The documented request body."""
    return {"virtual_machine_network_interface": {"id": interface_id}, "ip_address": ip_lookup}


def allocate(target: Target, credential: Credential | None, interface_id: Any, ip_lookup: Any, *, budgeted: bool = True,
             resend: bool | None = None) -> httpx.Response:
    """POST allocate_ip (`resend`: as Target.send takes it; the ledger putting an IP back resends, and reads the IP after)."""
    return target.send("POST", ALLOCATE_PATH, credential=credential, json=allocate_body(interface_id, ip_lookup), budgeted=budgeted,
                       resend=resend)


def read_ip(target: Target, credential: Credential, ip: IPRef, *, budgeted: bool = True) -> httpx.Response:
    """GET /ip_addresses/ip_address by id, as it is answered."""
    return target.send("GET", READ_IP_PATH, credential=credential, params={"ip_address[id]": ip.id}, budgeted=budgeted)


def holder_of(target: Target, credential: Credential, ip: IPRef, *, budgeted: bool = True) -> str | None:
    """Who holds the IP now, or None when free: on the wire a virtual machine's id (`allocation.value.id`), never an interface's."""
    response = target.send("GET", READ_IP_PATH, credential=credential, params={"ip_address[id]": ip.id}, budgeted=budgeted)
    if response.status_code != 200:
        raise TargetError(
            f"cannot read the allocation of {ip.id} ({ip.address}): GET {READ_IP_PATH} answered {response.status_code}"
            f" {error_code_of(response)}; check ip_addresses in the target fixtures and the token in credentials.valid"
        )
    return holder_in(json_object(response))


def holder_in(body: dict[str, Any]) -> str | None:
    """Who holds the IP in a GET ip_address body: `allocation.value.id` (a virtual machine), else `ip_address.allocation_id`; None when free."""
    allocation = body.get("allocation")
    if isinstance(allocation, dict):
        value = allocation.get("value")
        holder = value.get("id") if isinstance(value, dict) else None
        return str(holder) if holder else f"({allocation.get('type') or 'allocated'})"
    ip_body = body.get("ip_address")
    if isinstance(ip_body, dict) and ip_body.get("allocation_id"):
        return str(ip_body["allocation_id"])
    return None


def virtual_machine_of(target: Target, credential: Credential, interface_id: str, *, budgeted: bool = True) -> str:
    """The id of the virtual machine an interface belongs to (the holder its allocations show); InterfaceReadRefused for scope."""
    response = read_interface(target, credential, interface_id, budgeted=budgeted)
    if response.status_code == 403 and error_code(response) == "scope_not_granted":
        raise InterfaceReadRefused(read_refusal(response))
    if response.status_code != 200:
        raise TargetError(
            f"cannot read the network interface {interface_id}: GET {READ_INTERFACE_PATH} answered {response.status_code}"
            f" {error_code_of(response)}; check network_interface.id / other_network_interface.id in the target fixtures"
        )
    interface = json_object(response).get("virtual_machine_network_interface")
    machine = interface.get("virtual_machine") if isinstance(interface, dict) else None
    machine_id = machine.get("id") if isinstance(machine, dict) else None
    if not isinstance(machine_id, str) or not machine_id:
        raise TargetError(f"GET {READ_INTERFACE_PATH} for {interface_id} names no virtual_machine.id; is --target-url a Katapult Core API v1?")
    return machine_id


def read_refusal(response: httpx.Response) -> str:
    """Why the interface read was refused, naming the scopes the server asked for (the documented ones when it names none)."""
    error = json_object(response).get("error")
    detail = error.get("detail") if isinstance(error, dict) else None
    asked = detail.get("scopes") if isinstance(detail, dict) else None
    scopes = [str(scope) for scope in asked] if isinstance(asked, list) and asked else list(INTERFACE_READ_SCOPES)
    return f"the token in credentials.valid lacks the {' or '.join(scopes)} scope (GET {READ_INTERFACE_PATH} answered 403 scope_not_granted)"


def machine_named_by(response: httpx.Response) -> tuple[str, str] | None:
    """(interface id, virtual machine id) that an allocate_ip 200 names, or None for any other response."""
    if response.status_code != 200 or response.request.method != "POST" or not response.request.url.path.endswith(ALLOCATE_SUFFIX):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    interface = body.get("virtual_machine_network_interface") if isinstance(body, dict) else None
    machine = interface.get("virtual_machine") if isinstance(interface, dict) else None
    interface_id = interface.get("id") if isinstance(interface, dict) else None
    machine_id = machine.get("id") if isinstance(machine, dict) else None
    if isinstance(interface_id, str) and interface_id and isinstance(machine_id, str) and machine_id:
        return interface_id, machine_id
    return None


def read_interface(target: Target, credential: Credential, interface_id: str, *, budgeted: bool = True) -> httpx.Response:
    """GET /virtual_machine_network_interfaces/virtual_machine_network_interface."""
    params = {"virtual_machine_network_interface[id]": interface_id}
    return target.send("GET", READ_INTERFACE_PATH, credential=credential, params=params, budgeted=budgeted)


def listed_ips(response: httpx.Response) -> set[tuple[str, str]]:
    """(id, address) of every IP an interface body (allocate_ip's 200, or the interface read) lists."""
    interface = json_object(response).get("virtual_machine_network_interface")
    items = interface.get("ip_addresses") if isinstance(interface, dict) else None
    return {(str(item.get("id")), str(item.get("address"))) for item in items or [] if isinstance(item, dict)}


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object; a body that is not one is the target's problem, said in one sentence."""
    try:
        body = response.json()
    except ValueError:
        raise TargetError(
            f"{response.request.method} {response.request.url.path} answered {response.status_code} with a body that is not JSON"
            f" ({response.headers.get('content-type', 'no content type')}); is --target-url the API base, ending in /core/v1?"
        ) from None
    return body if isinstance(body, dict) else {}


def error_code_of(response: httpx.Response) -> str:
    """`error.code` for messages (read by the checks' own reader), or the content type when the body is not JSON."""
    code = error_code(response)
    if code is not None:
        return code
    try:
        response.json()
    except ValueError:
        return f"({response.headers.get('content-type', 'no content type')})"
    return "(no error code)"


def unallocate(target: Target, credential: Credential, ip: IPRef, *, budgeted: bool = True, resend: bool | None = None) -> httpx.Response:
    """POST /ip_addresses/ip_address/unallocate (`resend` as for allocate)."""
    return target.send("POST", UNALLOCATE_PATH, credential=credential, json={"ip_address": {"id": ip.id}}, budgeted=budgeted,
                       resend=resend)
