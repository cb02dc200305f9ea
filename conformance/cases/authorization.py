"""Authorization beyond one token (fact sheet, "Who may see and change what"): a token granted only ip_addresses:read may
not allocate, and another organization's IP or interface is not found by this organization's token, by id and by address
alike, and never changed.

What is a setup mistake *or* a server fault is said here with both causes, for the preflight (a doubt) and the scenarios
(a finding) alike.
"""
from __future__ import annotations

import httpx

from conformance.contract.checks import ConformanceFailure, expect_error, served_past_scope
from conformance.contract.findings import report
from conformance.contract.ids import (
    OTHER_ORGANIZATION_INTERFACE,
    OTHER_ORGANIZATION_IP,
    READ_ONLY_TOKEN_REFUSED,
    RESPONSE_SHAPE,
    SCOPE_NOT_GRANTED,
)
from conformance.setup.fixtures import IPRef
from conformance.wire.exchange import error_code, error_detail, json_body

READ_ONLY, FOREIGN_IP, FOREIGN_INTERFACE = READ_ONLY_TOKEN_REFUSED, OTHER_ORGANIZATION_IP, OTHER_ORGANIZATION_INTERFACE
# The scope allocate_ip needs, exactly as its refusal names it (fact sheet).
ALLOCATE_SCOPES = ["ip_addresses"]
ISOLATION = "organization isolation"
READ_ONLY_SERVED = ("either the server takes ip_addresses:read for the ip_addresses scope allocate_ip needs, or credentials.read_only"
                    " holds ip_addresses (a setup mistake: give a token granted only ip_addresses:read)")
CODE_DEVIATION = "refused with another code, and nothing changed: a code deviation, not an authorization failure"


def said(response: httpx.Response) -> str:
    """Status and error code (a success has none), for a message."""
    if 200 <= response.status_code < 300:
        return str(response.status_code)
    return f"{response.status_code} {error_code(response) or '(no error code)'}"


def foreign_ip_readable(ip: IPRef, answered: str) -> str:
    """Why the valid token reading "another organization's" IP may be the fixtures or the server."""
    return (f"other_organization.ip_address {ip.id} ({ip.address}) is readable by credentials.valid (GET ip_address answered {answered}):"
            " either it is not another organization's IP (a fixture mistake: name an IP of an organization credentials.valid does not"
            " belong to) or the server lets one organization read another's IPs")


def foreign_interface_visible(interface: str, answered: str) -> str:
    """Why the valid token finding "another organization's" interface may be the fixtures or the server."""
    return (f"other_organization.network_interface {interface} is found by credentials.valid ({answered}): either it is not another"
            " organization's interface (a fixture mistake: name an interface of an organization credentials.valid does not belong to)"
            " or the server lets one organization see another's interfaces")


def read_only_cannot_read(answered: str) -> str:
    """Why a read-only token refused a read may be the fixtures or the server."""
    return (f"credentials.read_only may not read IPs (GET ip_address answered {answered}): either the token lacks ip_addresses:read"
            " (a setup mistake: give a token granted ip_addresses:read) or the server refuses the read scope GET ip_address documents")


def judge_read_only_refusal(response: httpx.Response, change: str) -> None:
    """allocate_ip with the read-only token: 403 scope_not_granted naming exactly ip_addresses. Served, the promise fails naming
    both causes and what changed (`change`); refused naming other scopes, 403 scope_not_granted's shape does."""
    try:
        failed = expect_error(response, 403, "scope_not_granted")
    except ConformanceFailure as failure:
        if not served_past_scope(response):
            raise
        raise failure.replaced(received=f"{failure.received}, served past the scope check{change}: {READ_ONLY_SERVED}") from None
    if failed & {SCOPE_NOT_GRANTED, RESPONSE_SHAPE}:
        return
    scopes = error_detail(response).get("scopes")
    if scopes != ALLOCATE_SCOPES:
        # The read-only token was refused, as promised; a refusal naming other scopes is the shape of the refusal itself.
        report(ConformanceFailure("403 scope_not_granted names other scopes", f"detail.scopes {scopes!r}",
                                  f"detail.scopes {ALLOCATE_SCOPES!r}, the scope allocate_ip needs", response, promise=SCOPE_NOT_GRANTED,
                                  check="detail.scopes"))


def judge_read_only_read(response: httpx.Response, ip: IPRef) -> None:
    """The read-only token may read IPs: GET ip_address answers 200 with the IP asked for."""
    if response.status_code == 403 and error_code(response) == "scope_not_granted":
        raise ConformanceFailure("Read-only token refused a read", read_only_cannot_read(said(response)),
                                 "200: ip_addresses:read is one of GET ip_address's scopes", response, promise=READ_ONLY, check="reads allowed")
    read = (json_body(response) or {}).get("ip_address")
    if response.status_code != 200 or not isinstance(read, dict) or read.get("id") != ip.id:
        raise ConformanceFailure("Read-only token's read failed", f"GET ip_address for {ip.id} answered {said(response)}",
                                 f"200 with ip_address {ip.id}", response, promise=READ_ONLY, check="reads allowed")


def expect_not_found(response: httpx.Response, code: str) -> None:
    """Another organization's object refused as not found (404 `code`); another refusal is said as a code deviation."""
    try:
        expect_error(response, 404, code)
    except ConformanceFailure as failure:
        if not (failure.check == "status and code" and 400 <= response.status_code < 500):
            raise
        raise failure.replaced(received=f"{failure.received}: {CODE_DEVIATION}") from None
