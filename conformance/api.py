"""The endpoint's requests in the suite's words: allocate, and the two support operations."""
from __future__ import annotations

from typing import Any

import httpx

from conformance.target import ALLOCATE_PATH, READ_IP_PATH, UNALLOCATE_PATH, Target, TargetError
from conformance.targetfile import Credential, IPRef


def allocate_body(interface_id: Any, ip_lookup: Any) -> dict[str, Any]:
    """The documented request body."""
    return {"virtual_machine_network_interface": {"id": interface_id}, "ip_address": ip_lookup}


def allocate(target: Target, credential: Credential | None, interface_id: Any, ip_lookup: Any) -> httpx.Response:
    """POST allocate_ip."""
    return target.send("POST", ALLOCATE_PATH, credential=credential, json=allocate_body(interface_id, ip_lookup))


def holder_of(target: Target, credential: Credential, ip: IPRef, *, budgeted: bool = True) -> str | None:
    """Who holds the IP now (the allocation's id), or None when free; read with GET /ip_addresses/ip_address."""
    response = target.send("GET", READ_IP_PATH, credential=credential, params={"ip_address[id]": ip.id}, budgeted=budgeted)
    if response.status_code != 200:
        raise TargetError(
            f"cannot read the allocation of {ip.id} ({ip.address}): GET {READ_IP_PATH} answered {response.status_code};"
            " check ip_addresses in the target fixtures"
        )
    body = response.json()
    allocation = body.get("allocation") if isinstance(body, dict) else None
    if isinstance(allocation, dict):
        holder = allocation.get("id") or (allocation.get("value") or {}).get("id")
        return str(holder) if holder else "(allocated)"
    ip_body = body.get("ip_address") if isinstance(body, dict) else None
    if isinstance(ip_body, dict) and ip_body.get("allocation_id"):
        return str(ip_body["allocation_id"])
    return None


def unallocate(target: Target, credential: Credential, ip: IPRef, *, budgeted: bool = True) -> httpx.Response:
    """POST /ip_addresses/ip_address/unallocate."""
    return target.send("POST", UNALLOCATE_PATH, credential=credential, json={"ip_address": {"id": ip.id}}, budgeted=budgeted)
