"""Authorization beyond one token: a read-only token may not allocate, and another organization's IP and interface are not
found by this organization's token and never changed (what each finding means: conformance.cases.authorization)."""
from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from conformance.cases.authorization import (
    ISOLATION,
    expect_not_found,
    foreign_interface_visible,
    foreign_ip_readable,
    judge_read_only_read,
    judge_read_only_refusal,
    said,
)
from conformance.contract.checks import ConformanceFailure, conforms_to_fragment, side_effect
from conformance.contract.findings import report, require
from conformance.contract.ids import (
    INTERFACE_NOT_FOUND,
    IP_ADDRESS_NOT_FOUND,
    NO_SIDE_EFFECTS,
    OTHER_ORGANIZATION_INTERFACE,
    OTHER_ORGANIZATION_IP,
    READ_ONLY_TOKEN_REFUSED,
)
from conformance.contract.promises import CLEANUP, OptedOut
from conformance.gate.ledger import AllocationLedger, curl
from conformance.gate.session import ConformanceSession
from conformance.setup.fixtures import Credential, IPRef, TargetFixtures
from conformance.wire import api
from conformance.wire.exchange import Change
from conformance.wire.paths import READ_INTERFACE_PATH, UNALLOCATE_PATH
from conformance.wire.transport import Target


def not_opted_out(fixtures: TargetFixtures, key: str) -> None:
    """Skip as opted out when the target fixtures set `key` to false."""
    setting = fixtures.opt_out(key)
    if setting is not None:
        raise OptedOut(setting)


@pytest.mark.promise(READ_ONLY_TOKEN_REFUSED, NO_SIDE_EFFECTS)
def test_read_only_token_may_not_allocate(target: Target, target_fixtures: TargetFixtures, ledger: AllocationLedger,
                                          conformance_session: ConformanceSession) -> None:
    """A token granted only ip_addresses:read gets 403 scope_not_granted naming ip_addresses, changes nothing, and may read IPs."""
    not_opted_out(target_fixtures, "credentials.read_only")
    read_only = target_fixtures.credential("read_only")
    conformance_session.refuse_doubted("credentials.read_only")
    ip = target_fixtures.allocatable_ip(0)
    before = ledger.touch(ip)
    response = api.allocate(target, read_only, target_fixtures.network_interface_id, {"id": ip.id})
    now = ledger.holder(ip)
    moved = f"; {ip.id} ({ip.address}) is now held by {now or 'nobody'} (put back at the test's end)" if now != before else ""
    judge_read_only_refusal(response, moved)
    if now != before:
        raise side_effect(ip, now, before, response, ledger.fix_command(ip, before, now))
    judge_read_only_read(api.read_ip(target, read_only, ip), ip)


@dataclass(frozen=True)
class Seen:
    """What the suite can see of the fixture interface and the foreign IP: its IPs where credentials.valid may read interfaces,
    the foreign IP's holder with credentials.other_organization (each None when it cannot see it)."""

    interface_ips: frozenset[tuple[str, str]] | None
    foreign_holder: tuple[str | None] | None

    @classmethod
    def now(cls, target: Target, fixtures: TargetFixtures, session: ConformanceSession, foreign: IPRef) -> Seen:
        """Read both, as far as the credentials allow."""
        ips = None
        if session.interfaces.read_refused is None:
            read = api.read_interface(target, fixtures.credential("valid"), fixtures.network_interface_id)
            ips = frozenset(api.listed_ips(read)) if read.status_code == 200 else None
        other = fixtures.credentials.get("other_organization")
        holder = None
        if other is not None:
            read = api.read_ip(target, other, foreign)
            holder = (api.holder_in(api.json_object(read)),) if read.status_code == 200 else None
        return cls(ips, holder)


def foreign_taken(foreign: IPRef, interface: str, before: Seen, after: Seen) -> str | None:
    """In plain words, what became of another organization's IP, if the suite saw it move."""
    if after.interface_ips is not None and (foreign.id, foreign.address) in after.interface_ips - (before.interface_ips or frozenset()):
        return f"another organization's IP {foreign.id} ({foreign.address}) is now allocated to your interface {interface}"
    if before.foreign_holder is not None and after.foreign_holder is not None and before.foreign_holder != after.foreign_holder:
        was, now = before.foreign_holder[0] or "free", after.foreign_holder[0] or "free"
        return (f"another organization's IP {foreign.id} ({foreign.address}) is now held by {now} (it was {was}), as"
                " credentials.other_organization reads it")
    return None


def other_organizations_token(fixtures: TargetFixtures) -> Credential:
    """How a printed command names a token of the other organization: credentials.other_organization (by its variable), else a
    placeholder named after that key (never a value)."""
    return fixtures.credentials.get("other_organization") or Credential.bearer("other_organization", "")


def other_organizations_unallocate(target: Target, fixtures: TargetFixtures, ip: IPRef) -> str:
    """The command that unallocates `ip` with a token of the other organization, saying which placeholder to set."""
    token = other_organizations_token(fixtures)
    placeholders = [reference.variable for reference in (token.reference(header) for header in token.headers) if reference.inline]
    where = f" (with {', '.join(placeholders)} set to such a token)" if placeholders else ""
    return f"{curl(target.base_url, UNALLOCATE_PATH, {'ip_address': {'id': ip.id}}, token)}{where}"


def put_back_foreign(target: Target, fixtures: TargetFixtures, foreign: IPRef, before: Seen) -> str:
    """Try to give back another organization's IP with the valid token; say what was and was not put back, and who can."""
    undone = api.unallocate(target, fixtures.credential("valid"), foreign, budgeted=False)
    started = before.foreign_holder[0] if before.foreign_holder is not None else None
    command = other_organizations_unallocate(target, fixtures, foreign)
    if undone.status_code == 200 and started is None:
        return "the suite put it back (unallocated it with credentials.valid)"
    if undone.status_code == 200:
        left = (f"the suite unallocated it with credentials.valid, but it started held by {started}, and only the other organization can"
                f" give it back: allocate_ip to an interface of {started} with that organization's token")
    else:
        left = (f"the suite could not put it back (unallocate with credentials.valid answered {said(undone)}); a token of the other"
                f" organization with the ip_addresses scope can: {command}")
    report(ConformanceFailure("Another organization's IP not back in its starting state", f"{foreign.id} ({foreign.address}): {left}",
                              "every IP the suite touched as it found it", undone, promise=CLEANUP.id, check="another organization's IP"))
    return left


@pytest.mark.promise(OTHER_ORGANIZATION_IP, NO_SIDE_EFFECTS)
@pytest.mark.parametrize("lookup", ["id", "address"])
def test_another_organizations_ip_is_not_found(lookup: str, target: Target, target_fixtures: TargetFixtures, ledger: AllocationLedger,
                                               conformance_session: ConformanceSession) -> None:
    """Another organization's IP, asked for the fixture interface by id or by address: 404 ip_address_not_found, nothing changes."""
    not_opted_out(target_fixtures, "other_organization")
    foreign = target_fixtures.foreign_ip()
    conformance_session.refuse_doubted("other_organization.ip_address")
    require(IP_ADDRESS_NOT_FOUND)
    valid, interface = target_fixtures.credential("valid"), target_fixtures.network_interface_id
    visible = api.read_ip(target, valid, foreign)
    if visible.status_code == 200:
        # Nothing is allocated then: the IP may be this organization's own.
        raise ConformanceFailure("Another organization's IP is readable", foreign_ip_readable(foreign, said(visible)),
                                 "404 ip_address_not_found: another organization's IP is not found", visible, check=ISOLATION)
    before = Seen.now(target, target_fixtures, conformance_session, foreign)
    response = api.allocate(target, valid, interface, {lookup: getattr(foreign, lookup)})
    after = Seen.now(target, target_fixtures, conformance_session, foreign)
    taken = foreign_taken(foreign, interface, before, after)
    if taken is not None or response.status_code == 200:
        conforms_to_fragment(response, status_expected=True)
        what = taken or (f"allocate_ip answered 200 for another organization's IP {foreign.id} ({foreign.address}); where it went is not"
                         " seen (credentials.valid may not read interfaces, and credentials.other_organization is not given)")
        # Sent again, the request allocates it again: its reproduce lines say so and put it back as that organization can.
        change = Change(f"it allocates another organization's IP {foreign.id} ({foreign.address})",
                        curl(target.base_url, UNALLOCATE_PATH, {"ip_address": {"id": foreign.id}}, other_organizations_token(target_fixtures)))
        raise ConformanceFailure("Another organization's IP was allocated", f"{said(response)}: {what}; "
                                 f"{put_back_foreign(target, target_fixtures, foreign, before)}",
                                 "404 ip_address_not_found, and the other organization's IP unchanged", response, check=ISOLATION,
                                 change=change)
    moved_on_interface(ledger, before, after, response)
    expect_not_found(response, "ip_address_not_found")


def moved_on_interface(ledger: AllocationLedger, before: Seen, after: Seen, response: httpx.Response) -> None:
    """The fixture interface lists the IPs it did before: any other change is a side effect, put back at the test's end."""
    if before.interface_ips is None or after.interface_ips is None or before.interface_ips == after.interface_ips:
        return
    changed = before.interface_ips ^ after.interface_ips
    fixture_ips = [ip for ip in ledger.started if (ip.id, ip.address) in changed]
    # Named by no request, they are read afresh now and put back at the test's end.
    ledger.suspect(fixture_ips)
    for ip in fixture_ips:
        now, was = ledger.holder(ip), ledger.started[ip]
        if now != was:
            raise side_effect(ip, now, was, response, ledger.fix_command(ip, was, now))
    raise ConformanceFailure("Refused request changed the interface's IPs", f"the interface now lists {sorted(after.interface_ips)}",
                             f"unchanged: {sorted(before.interface_ips)}", response, promise=NO_SIDE_EFFECTS, check="allocations unchanged",
                             change=Change("though refused, it changes the IPs the interface holds"))


@pytest.mark.promise(OTHER_ORGANIZATION_INTERFACE)
def test_fixture_ip_to_another_organizations_interface_is_not_found(target: Target, target_fixtures: TargetFixtures,
                                                                    ledger: AllocationLedger, conformance_session: ConformanceSession) -> None:
    """The fixture IP asked for another organization's interface: 404 virtual_machine_network_interface_not_found, the IP unchanged."""
    not_opted_out(target_fixtures, "other_organization")
    foreign = target_fixtures.foreign_interface()
    conformance_session.refuse_doubted("other_organization.network_interface")
    require(INTERFACE_NOT_FOUND)
    valid, ip = target_fixtures.credential("valid"), target_fixtures.allocatable_ip(0)
    if conformance_session.interfaces.read_refused is None:
        visible = api.read_interface(target, valid, foreign)
        if visible.status_code == 200:
            raise ConformanceFailure("Another organization's interface is readable",
                                     foreign_interface_visible(foreign, f"GET {READ_INTERFACE_PATH} answered {said(visible)}"),
                                     "404 virtual_machine_network_interface_not_found: another organization's interface is not found",
                                     visible, check=ISOLATION)
    ledger.touch_free(ip)
    response = api.allocate(target, valid, foreign, {"id": ip.id})
    now = ledger.holder(ip)
    if now is not None or response.status_code == 200:
        conforms_to_fragment(response, status_expected=True)
        drifts = ledger.restore([ip]) if now is not None else []
        held = (f"{ip.id} ({ip.address}) is now held by {now}, the virtual machine of another organization's interface {foreign}"
                if now is not None else f"allocate_ip answered 200, though {ip.id} ({ip.address}) stays free")
        command = other_organizations_unallocate(target, target_fixtures, ip)
        back = ("" if now is None else "; the suite put it back (unallocated it with credentials.valid)" if not drifts else
                f"; the suite could not put it back ({drifts[0]}); a token of the other organization with the ip_addresses scope can"
                f" too: {command}")
        raise ConformanceFailure("The fixture IP was allocated to another organization's interface", f"{said(response)}: {held}{back}",
                                 "404 virtual_machine_network_interface_not_found, and the IP unchanged", response, check=ISOLATION)
    expect_not_found(response, "virtual_machine_network_interface_not_found")
