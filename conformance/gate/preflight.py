"""The preflight: before any test, check the setup (URL, credentials, interfaces, fixture IPs) against the target."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from conformance.cases.authorization import (
    FOREIGN_INTERFACE,
    FOREIGN_IP,
    READ_ONLY,
    foreign_interface_visible,
    foreign_ip_readable,
    read_only_cannot_read,
)
from conformance.contract.checks import served_past_scope
from conformance.contract.ids import SCOPE_NOT_GRANTED
from conformance.gate.machines import ANSWERS_SOURCE, READ_SOURCE
from conformance.setup.fixtures import Credential, IPRef, OtherOrganization, TargetFixtures
from conformance.wire.api import holder_in, read_refusal
from conformance.wire.exchange import json_body
from conformance.wire.paths import ALLOCATE_PATH, READ_INTERFACE_PATH, READ_IP_PATH, UNALLOCATE_PATH
from conformance.wire.transport import ConnectionDropped, Target, TargetError, TargetGone, TargetUnreachable

API_BASE_HINT = "is --target-url the API base, ending in /core/v1?"
# What each credential must be, for a message naming a key given another's token.
WANTED = {"valid": "a token with the ip_addresses scope", "without_scope": "a token without the ip_addresses scope",
          "network_restricted": "a token restricted to networks other than this client's",
          "invalid_capabilities": "a capabilities token the server refuses", "read_only": "a token granted only ip_addresses:read",
          "other_organization": "a token of the organization other_organization names"}
# What each optional credential must be refused with on allocate_ip; a credential refused as unknown is a setup mistake.
REFUSED_AS = {"without_scope": "scope_not_granted", "network_restricted": "unauthorized_network_for_api_token",
              "invalid_capabilities": "invalid_capabilities_token", "read_only": "scope_not_granted"}
# An IP id no target can have (real ids have no hyphen): looking it up allocates nothing.
PROBE_IP_ID = "ip_conformance-preflight-probe"
# An interface id no target can have. A probe of both passes every argument check, so it reaches authentication, the scope
# and the lookups whatever order a server checks them in (an order-of-checks fault is left to the tests that judge it), and
# it can allocate nothing: the objects it names do not exist.
PROBE_INTERFACE_ID = "vmnet_conformance-preflight-probe"
PROBE_BODY = {"virtual_machine_network_interface": {"id": PROBE_INTERFACE_ID}, "ip_address": {"id": PROBE_IP_ID}}
UNALLOCATE_PROBE = {"ip_address": {"id": PROBE_IP_ID}}
# A token documented as lacking allocate_ip's scope that the server serves anyway: the promise it fails, and the server's side
# of the doubt (the setup's side is that the token holds the scope).
SCOPE_PROMISES = {"without_scope": (SCOPE_NOT_GRANTED, "the server ignores scopes"),
                  "read_only": (READ_ONLY, "the server takes ip_addresses:read for the ip_addresses scope")}
MAX_REQUESTS = 20


# What OpenSSL says when a TLS handshake gets a plain HTTP answer (the wording moved between OpenSSL versions).
PLAIN_HTTP_SIGNS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL", "HTTP_REQUEST")


class SetupUnreachable(TargetError):
    """The target cannot be reached at all; the message says what to check."""


@dataclass(frozen=True)
class Doubt:
    """An answer that is a setup mistake or a server fault, and no request tells which (docs/live.md, the preflight's outcomes).

    The run goes on: `promise` fails with `message` (which names both causes), and nothing is sent with the fixture `key`.
    """

    key: str
    promise: str
    message: str

    def __str__(self) -> str:
        return f"{self.message} (a run fails {self.promise})"


class NotChecked(TargetError):
    """The target could not be asked (its token's window stayed spent, maintenance, a gateway's page, no answer): nothing is
    concluded of the setup, never `setup ok`; the run stops with exit 4, the message saying why and what to try."""


NOT_CHECKED = "the preflight could not check the setup"


@dataclass
class Preflight:
    """What the preflight found: problems stop the run; holders are every fixture IP's starting state."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Setup mistakes or server faults the wire cannot tell apart: the run goes on, failing each one's promise.
    doubts: list[Doubt] = field(default_factory=list)
    holders: dict[IPRef, str | None] = field(default_factory=dict)
    # The other organization's IP as its own token reads it (with credentials.other_organization): who holds it to start with.
    foreign_holders: dict[IPRef, str | None] = field(default_factory=dict)
    machines: dict[str, str] = field(default_factory=dict)
    networks: dict[str, str] = field(default_factory=dict)
    # Why the token may not read interfaces (naming the scope), when it may not: their machines come from allocate_ip's 200s.
    interface_read_refused: str | None = None
    requests: int = 0

    @property
    def ok(self) -> bool:
        """Whether the setup is usable."""
        return not self.problems

    def doubted(self, key: str) -> Doubt | None:
        """The doubt about this fixture key, if the preflight has one."""
        return next((doubt for doubt in self.doubts if doubt.key == key), None)

    @property
    def machine_source(self) -> str:
        """Where the run learns each interface's virtual machine."""
        return ANSWERS_SOURCE if self.interface_read_refused is not None else READ_SOURCE

    def lines(self) -> list[str]:
        """What it found, one line each: problems first, then doubts, notes and the starting state of each fixture IP."""
        lines = [f"setup problem: {problem}" for problem in self.problems]
        lines += [f"doubt: {doubt}" for doubt in self.doubts]
        lines += [f"note: {note}" for note in self.notes]
        if self.machines or self.interface_read_refused is not None:
            # Only once the preflight got as far as the interfaces: a setup refused before them says nothing of where from.
            lines.append(f"interface virtual machines from {self.machine_source}")
        lines += [f"interface {interface} is on virtual machine {machine}" for interface, machine in self.machines.items()]
        lines += [f"{ip.id} ({ip.address}) starts {'held by ' + holder if holder else 'free'}" for ip, holder in self.holders.items()]
        lines += [f"other_organization.ip_address {ip.id} ({ip.address}) starts {'held by ' + holder if holder else 'free'}"
                  f" (as credentials.other_organization reads it)" for ip, holder in self.foreign_holders.items()]
        lines.append(f"preflight sent {self.requests} request{'' if self.requests == 1 else 's'}")
        return lines


def code_of(response: httpx.Response) -> str | None:
    """`error.code` (or a bare `code`: a server that forgot the envelope is still told apart in setup messages)."""
    body = json_body(response) or {}
    error = body["error"] if isinstance(body.get("error"), dict) else body
    code = error.get("code")
    return str(code) if isinstance(code, str) else None


def said(response: httpx.Response) -> str:
    """Status and error code (a success has none), for a message."""
    if 200 <= response.status_code < 300:
        return str(response.status_code)
    return f"{response.status_code} {code_of(response) or '(no error code)'}"


def nested_id(body: dict[str, Any] | None, *keys: str) -> str | None:
    """body[k1][k2]...["id"] when it is a non-empty string."""
    value: Any = body
    for key in (*keys, "id"):
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) and value else None


class Checker:
    """Runs the checks in order; a check that finds the setup unusable stops those that depend on it."""

    def __init__(self, target: Target, fixtures: TargetFixtures, on_wait: Callable[[str], None] | None = None) -> None:
        self.target = target
        self.fixtures = fixtures
        # Told, before it, of the one wait for a spent rate window the preflight may make (no wait is silent).
        self.on_wait = on_wait or (lambda message: None)
        self.waited = False
        self.started = target.sent
        self.found = Preflight()
        self.valid = fixtures.credential("valid")
        self.where = f"in {fixtures.source}"
        # Interfaces the token may not read (scope): their existence is probed after the starting state is read.
        self.unread: list[tuple[str, str]] = []
        # Credentials already named as another's secret: probing them again would only repeat that problem.
        self.duplicates: set[str] = set()
        # Tokens documented as lacking allocate_ip's scope that it served: asked again on unallocate once everything else is checked.
        self.served: list[tuple[str, Credential, httpx.Response]] = []
        # Credentials the server does not know (a problem already): nothing more is asked with them.
        self.unknown: set[str] = set()

    def send(self, method: str, path: str, credential: Credential | None = None, **kwargs: Any) -> httpx.Response:
        """One read of the setup, and only an answer that is the API's judgement of it: a 429 waits for the next window once
        (then the read is sent again), a 503 or a second 429 is NotChecked."""
        while True:
            if self.target.sent - self.started >= MAX_REQUESTS:
                raise NotChecked(f"{NOT_CHECKED}: it would need more than its {MAX_REQUESTS} requests (the network lost several);"
                                 " run again")
            # Unpaced: a dozen requests do not need it, and the pacer's own judgement of the headers is the tests' job.
            response = self.target.send(method, path, credential=credential, budgeted=False, paced=False, **kwargs)
            if response.status_code == 503:
                raise NotChecked(f"{NOT_CHECKED}: {method} {path} answered {said(response)}, the target is in maintenance or"
                                 " overloaded; run again when it is back")
            if response.status_code != 429:
                return response
            if self.waited:
                raise NotChecked(f"{NOT_CHECKED}: {method} {path} still answered {said(response)} after waiting for the token's next"
                                 " rate-limit window: other clients of the same token are spending it; run again when they are done,"
                                 " or give the suite a token of its own")
            self.waited = True
            window = self.target.pacer.window_seconds
            retry_after = response.headers.get("Retry-After", "")
            wait = min(window, float(retry_after)) if retry_after.isdigit() else window
            self.on_wait(f"{method} {path} answered {said(response)}: the token's rate-limit window is spent (by another client of"
                         f" it); waiting {wait + 1:g} s for the next one")
            self.target.pacer.sleep(wait + 1.0)

    def run(self) -> Preflight:
        """Every check, in dependency order; what can only end in a doubt or a note comes last, as the request budget allows."""
        self.started = self.target.sent
        try:
            self.distinct_credentials()
            if self.api_answers() and self.valid_token_works():
                self.interfaces()
                self.ips()
                self.unread_interfaces_exist()
                self.other_credentials()
                self.other_organization()
                for key, credential, allocated in self.served:
                    self.scope_served(key, credential, allocated)
                self.read_only_reads()
        except TargetUnreachable as error:
            raise SetupUnreachable(f"{error}{self.transport_hint(str(error))}") from None
        except (ConnectionDropped, TargetGone) as error:
            raise NotChecked(f"{NOT_CHECKED}: {error}; check the target and any proxy in front of it, and run again") from None
        finally:
            self.found.requests = self.target.sent - self.started
        return self.found

    def room(self) -> bool:
        """Whether the preflight may send one more request (it sends at most MAX_REQUESTS)."""
        return self.target.sent - self.started < MAX_REQUESTS

    def transport_hint(self, error: str) -> str:
        """What to try when the target cannot be reached the way the URL says."""
        if "CERTIFICATE_VERIFY_FAILED" in error or "certificate" in error.lower():
            return "; for an internal CA pass --ca-bundle PATH (or set SSL_CERT_FILE)"
        url = urlsplit(self.target.base_url)
        if url.scheme == "https" and any(sign in error.upper() for sign in PLAIN_HTTP_SIGNS):
            return "; that port answers plain HTTP, not TLS: use an http:// --target-url"
        # Refused on a port the URL names: nothing listens there, whatever the scheme. On the scheme's own port 80, the
        # server may listen only on 443.
        if url.scheme == "http" and not ("refused" in error.lower() and url.port is not None):
            return "; if the server speaks HTTPS, use an https:// --target-url"
        return ""

    def api_answers(self) -> bool:
        """The URL answers allocate_ip like the Katapult API: a JSON error for a request without a token."""
        response = self.send("POST", ALLOCATE_PATH, json=PROBE_BODY)
        scheme = urlsplit(self.target.base_url).scheme
        if json_body(response) is None:
            text = response.text[:2000].lower()
            if scheme == "http" and ("https" in text or response.status_code in (400, 497)):
                self.problem(f"{self.target.base_url} answered plain HTTP with {response.status_code} and no JSON, as an HTTPS server does;"
                             " use https:// in --target-url")
            else:
                kind = response.headers.get("content-type", "no content type")
                self.problem(f"POST {ALLOCATE_PATH} answered {response.status_code} with a body that is not JSON ({kind}); {API_BASE_HINT}")
            return False
        if code_of(response) == "route_not_found":
            self.problem(f"POST {ALLOCATE_PATH} answered 404 route_not_found: there is no allocate_ip at {self.target.base_url}; {API_BASE_HINT}")
            return False
        return True

    def valid_token_works(self) -> bool:
        """credentials.valid is accepted and has the ip_addresses scope (the probe allocates nothing)."""
        response = self.send("POST", ALLOCATE_PATH, self.valid, json=PROBE_BODY)
        code = code_of(response)
        refusals = {
            "invalid_api_token": "is refused as invalid_api_token: the token is unknown or expired; renew it",
            "missing_api_token": "is not read as a token (400 missing_api_token); give a token string, sent as Authorization: Bearer",
            "scope_not_granted": "is accepted but lacks the ip_addresses scope (403 scope_not_granted); grant it",
            "unauthorized_network_for_api_token": "may not be used from this network (403 unauthorized_network_for_api_token"
                                                  f" for {self.caller(response)}); allow it or run from an allowed network",
            "invalid_capabilities_token": "is refused as invalid_capabilities_token; give a plain API token",
        }
        if code in refusals:
            self.problem(f"credentials.valid {refusals[code]} ({self.where})")
            return False
        return True

    def caller(self, response: httpx.Response) -> str:
        body = json_body(response) or {}
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        detail = error.get("detail") if isinstance(error, dict) else None
        return str(detail.get("ip_address")) if isinstance(detail, dict) and detail.get("ip_address") else "this client"

    def interfaces(self) -> None:
        """Both interfaces exist; note their virtual machines and networks; the other one is on another virtual machine."""
        self.interface("network_interface.id", self.fixtures.network_interface_id)
        other = self.fixtures.other_network_interface_id
        if other is None:
            return
        self.interface("other_network_interface.id", other)
        mine = self.found.machines.get(self.fixtures.network_interface_id)
        if mine is not None and self.found.machines.get(other) == mine:
            self.problem(f"other_network_interface.id {other} is on the same virtual machine ({mine}) as network_interface.id, and the API"
                         f" names an IP's holder by virtual machine; name an interface of another virtual machine ({self.where})")

    def interface(self, key: str, interface_id: str) -> None:
        response = self.send("GET", READ_INTERFACE_PATH, self.valid, params={"virtual_machine_network_interface[id]": interface_id})
        if response.status_code == 403 and code_of(response) == "scope_not_granted":
            # Least privilege: allocate_ip needs only ip_addresses. Not a setup mistake; the 200s name the machines instead.
            if self.found.interface_read_refused is None:
                self.found.interface_read_refused = read_refusal(response)
                self.note(f"{self.found.interface_read_refused}; interface virtual machines are learnt from allocate_ip's answers, and"
                          " other_network_interface.id is checked to be on another virtual machine once they name both")
            self.unread.append((key, interface_id))
            return
        if code_of(response) == "virtual_machine_network_interface_not_found":
            self.problem(f"{key} {interface_id} does not exist on the target (404 virtual_machine_network_interface_not_found);"
                         f" name an existing interface ({self.where})")
            return
        body = json_body(response)
        machine = nested_id(body, "virtual_machine_network_interface", "virtual_machine")
        if nested_id(body, "virtual_machine_network_interface") not in (None, interface_id):
            self.note(f"GET {READ_INTERFACE_PATH} for {key} {interface_id} answered another interface; the tests will judge it")
            return
        if response.status_code != 200 or machine is None:
            self.note(f"GET {READ_INTERFACE_PATH} for {key} {interface_id} answered {said(response)} without a virtual machine id;"
                      " the tests that need it will judge it")
            return
        self.found.machines[interface_id] = machine
        network = nested_id(body, "virtual_machine_network_interface", "network")
        if network is not None:
            self.found.networks[interface_id] = network

    def ips(self) -> None:
        """Every fixture IP exists under its id and address and is in the state its key claims; its holder is the starting state."""
        keyed = [(f"ip_addresses.allocatable[{index}]", "allocatable", ip) for index, ip in enumerate(self.fixtures.allocatable)]
        keyed += [(f"ip_addresses.{kind}", kind, ip) for kind in ("allocated_elsewhere", "invalid_for_interface")
                  if (ip := getattr(self.fixtures, kind)) is not None]
        for key, kind, ip in keyed:
            self.ip(key, kind, ip)

    def ip(self, key: str, kind: str, ip: IPRef) -> None:
        response = self.send("GET", READ_IP_PATH, self.valid, params={"ip_address[id]": ip.id})
        if code_of(response) == "ip_address_not_found":
            self.problem(f"{key} {ip.id} does not exist on the target (404 ip_address_not_found); fix its id ({self.where})")
            return
        if code_of(response) == "scope_not_granted":
            self.problem(f"credentials.valid may not read {key} {ip.id} (403 scope_not_granted); grant it the ip_addresses scope ({self.where})")
            return
        body = json_body(response)
        if response.status_code != 200 or body is None:
            self.note(f"GET {READ_IP_PATH} for {key} {ip.id} answered {said(response)}; its starting state is unknown")
            return
        holder = holder_in(body)
        self.found.holders[ip] = holder
        address = body["ip_address"].get("address") if isinstance(body.get("ip_address"), dict) else None
        if isinstance(address, str) and address != ip.address:
            self.problem(f"{key} {ip.id} has the address {address} on the target, not {ip.address}; fix its address ({self.where})")
        interface_id = self.fixtures.network_interface_id
        machine = self.found.machines.get(interface_id)
        network, wanted = nested_id(body, "ip_address", "network"), self.found.networks.get(interface_id)
        same_network = None if network is None or wanted is None else network == wanted
        held = f"is held by {holder}" if holder else "is free"
        if kind == "allocatable":
            if holder is not None:
                self.problem(f"{key} {ip.id} ({ip.address}) {held}; free it, or list an IP that is free ({self.where})")
            if same_network is False:
                self.problem(f"{key} {ip.id} ({ip.address}) is on network {network}, not on {interface_id}'s network {wanted};"
                             f" list an IP valid for the interface ({self.where})")
        elif kind == "allocated_elsewhere":
            if holder is None or holder == machine:
                whom = "free" if holder is None else f"held by {machine}, the virtual machine of network_interface.id"
                self.problem(f"{key} {ip.id} ({ip.address}) is {whom}; it must be held by another virtual machine ({self.where})")
        else:
            if holder is not None:
                self.problem(f"{key} {ip.id} ({ip.address}) {held}; it must be free ({self.where})")
            if same_network is True:
                self.problem(f"{key} {ip.id} ({ip.address}) is on {interface_id}'s own network {network}, so it is valid for it;"
                             f" list an IP of another network ({self.where})")

    def unread_interfaces_exist(self) -> None:
        """An interface the token may not read exists if allocate_ip looks it up: an unknown IP with it allocates nothing."""
        # Sent after the starting state is read: a server that moves IPs on this probe is found by the cleanup, not blamed on the setup.
        for key, interface_id in self.unread:
            body = {"virtual_machine_network_interface": {"id": interface_id}, "ip_address": {"id": PROBE_IP_ID}}
            response = self.send("POST", ALLOCATE_PATH, self.valid, json=body)
            if code_of(response) == "virtual_machine_network_interface_not_found":
                self.problem(f"{key} {interface_id} does not exist on the target (allocate_ip answered 404"
                             f" virtual_machine_network_interface_not_found); name an existing interface ({self.where})")

    def distinct_credentials(self) -> None:
        """Each credential is its own secret: one token under two keys would make a scenario expect a refusal from an allowed token."""
        keys = list(self.fixtures.credentials)
        for index, key in enumerate(keys):
            mine = self.fixtures.credentials[key].secrets()
            for earlier in keys[:index]:
                if mine & self.fixtures.credentials[earlier].secrets():
                    self.duplicates.add(key)
                    self.problem(f"credentials.{key} is the same secret as credentials.{earlier}; give each key its own token"
                                 f" (credentials.{key} must be {WANTED.get(key, 'another identity')}) ({self.where})")
                    break

    def other_credentials(self) -> None:
        """Each optional credential is a token the server knows (being served instead is the suite's to judge, not a setup error)."""
        for key, expected in REFUSED_AS.items():
            credential = self.fixtures.credentials.get(key)
            if credential is None or key in self.duplicates:
                continue
            response = self.send("POST", ALLOCATE_PATH, credential, json=PROBE_BODY)
            code = code_of(response)
            if code == "invalid_api_token" and expected != "invalid_capabilities_token" and "Authorization" in credential.headers:
                self.unknown.add(key)
                self.problem(f"credentials.{key} is refused as invalid_api_token: the token is unknown or expired; renew it ({self.where})")
            elif key in SCOPE_PROMISES and served_past_scope(response):
                self.served.append((key, credential, response))
            elif code != expected:
                self.note(f"credentials.{key} got {said(response)}, not {expected}; the scenarios will judge it")

    def scope_served(self, key: str, credential: Credential, allocated: httpx.Response) -> None:
        """allocate_ip served a token documented as lacking its scope: ask unallocate (same scope) about an IP no target has."""
        # Refused there for scope, the token lacks it and allocate_ip ignores scopes: the scenarios judge it. Served there too, the
        # token holds ip_addresses (a setup mistake) or the server ignores scopes everywhere: no request tells which, so it is a
        # doubt, and nothing that could change state is sent with the token.
        if self.room():
            response = self.send("POST", UNALLOCATE_PATH, credential, json=UNALLOCATE_PROBE)
            if not served_past_scope(response):
                self.note(f"credentials.{key} got {said(allocated)} from allocate_ip but {said(response)} from unallocate, which"
                          " needs the same scope: allocate_ip seems to ignore the scope; the scenarios will judge it")
                return
            answers = f"allocate_ip answered {said(allocated)} and unallocate {said(response)}"
        else:
            answers = f"allocate_ip answered {said(allocated)} (unallocate was not asked: the preflight's {MAX_REQUESTS} requests are spent)"
        promise, server = SCOPE_PROMISES[key]
        self.doubt(f"credentials.{key}", promise,
                   f"credentials.{key} is served past the scope check ({answers} to requests naming objects that do not exist, where a"
                   " token without the ip_addresses scope gets 403 scope_not_granted): either the token holds ip_addresses (a setup"
                   f" mistake: give {WANTED[key]}) or {server}; its scenarios are not run and nothing is sent with it ({self.where})")

    def other_organization(self) -> None:
        """Another organization's objects exist for its own token (else their ids are wrong: certain), and credentials.valid finds
        neither (else the fixtures name this organization's own, or the server leaks across organizations: a doubt)."""
        named = self.fixtures.other_organization
        if named is None:
            return
        token = self.fixtures.credentials.get("other_organization")
        if token is not None and "other_organization" not in self.duplicates:
            self.foreign_objects_exist(token, named)
        if named.ip_address is not None:
            self.foreign_ip_hidden(named.ip_address)
        if named.network_interface_id is not None:
            self.foreign_interface_hidden(named.network_interface_id)

    def foreign_objects_exist(self, token: Credential, named: OtherOrganization) -> None:
        """Read the other organization's IP and interface with its own token: a 404 means the fixtures name them wrongly."""
        reads = []
        if named.ip_address is not None:
            reads.append(("other_organization.ip_address", named.ip_address.id, READ_IP_PATH, "ip_address", "ip_address_not_found"))
        if named.network_interface_id is not None:
            reads.append(("other_organization.network_interface", named.network_interface_id, READ_INTERFACE_PATH,
                          "virtual_machine_network_interface", "virtual_machine_network_interface_not_found"))
        for key, object_id, path, argument, not_found in reads:
            response = self.send("GET", path, token, params={f"{argument}[id]": object_id})
            code = code_of(response)
            if code == "invalid_api_token" and "Authorization" in token.headers:
                self.problem(f"credentials.other_organization is refused as invalid_api_token: the token is unknown or expired; renew it"
                             f" ({self.where})")
                return
            if code == not_found:
                self.problem(f"{key} {object_id} does not exist for credentials.other_organization ({said(response)}); fix its id, or give"
                             f" a token of the organization it belongs to ({self.where})")
            elif response.status_code != 200:
                self.note(f"credentials.other_organization may not read {key} {object_id} ({said(response)}): whether it exists, and what"
                          " becomes of it, is not seen")
            elif named.ip_address is not None and path == READ_IP_PATH:
                self.foreign_ip_read(named.ip_address, response)

    def foreign_ip_read(self, ip: IPRef, response: httpx.Response) -> None:
        """The other organization's IP as its token reads it: at the fixtures' address; its holder is its starting state."""
        body = json_body(response) or {}
        address = body["ip_address"].get("address") if isinstance(body.get("ip_address"), dict) else None
        if isinstance(address, str) and address != ip.address:
            self.problem(f"other_organization.ip_address {ip.id} has the address {address}, not {ip.address}; fix its address ({self.where})")
        self.found.foreign_holders[ip] = holder_in(body)

    def foreign_ip_hidden(self, ip: IPRef) -> None:
        """credentials.valid cannot read the other organization's IP (404 ip_address_not_found)."""
        if not self.room():
            self.note(f"not checked: whether credentials.valid can read other_organization.ip_address {ip.id} (the preflight's"
                      f" {MAX_REQUESTS} requests are spent); its scenarios check it first")
            return
        response = self.send("GET", READ_IP_PATH, self.valid, params={"ip_address[id]": ip.id})
        if response.status_code == 200:
            self.doubt("other_organization.ip_address", FOREIGN_IP,
                       f"{foreign_ip_readable(ip, said(response))}; its scenarios are not run ({self.where})")
        elif code_of(response) != "ip_address_not_found":
            self.note(f"credentials.valid got {said(response)} reading other_organization.ip_address {ip.id}, not 404 ip_address_not_found;"
                      " the scenarios will judge it")

    def foreign_interface_hidden(self, interface: str) -> None:
        """credentials.valid does not find the other organization's interface: read where it may, else looked up by allocate_ip."""
        if not self.room():
            self.note(f"not checked: whether credentials.valid finds other_organization.network_interface {interface} (the preflight's"
                      f" {MAX_REQUESTS} requests are spent); its scenario checks it first where the token may read interfaces")
            return
        if self.found.interface_read_refused is None:
            response = self.send("GET", READ_INTERFACE_PATH, self.valid, params={"virtual_machine_network_interface[id]": interface})
            visible, how = response.status_code == 200, f"GET {READ_INTERFACE_PATH} answered {said(response)}"
        else:
            # Least privilege: allocate_ip looks the interface up before the IP, and the probe's IP exists nowhere: nothing is allocated.
            body = {"virtual_machine_network_interface": {"id": interface}, "ip_address": {"id": PROBE_IP_ID}}
            response = self.send("POST", ALLOCATE_PATH, self.valid, json=body)
            visible = code_of(response) == "ip_address_not_found"
            how = f"allocate_ip for an IP no target has answered {said(response)}, past the interface lookup"
        if visible:
            self.doubt("other_organization.network_interface", FOREIGN_INTERFACE,
                       f"{foreign_interface_visible(interface, how)}; its scenario is not run ({self.where})")
        elif code_of(response) != "virtual_machine_network_interface_not_found":
            self.note(f"credentials.valid got {said(response)} for other_organization.network_interface {interface}, not 404"
                      " virtual_machine_network_interface_not_found; the scenario will judge it")

    def read_only_reads(self) -> None:
        """credentials.read_only may read IPs: GET ip_address of an IP no target has gets past the scope check (404)."""
        credential = self.fixtures.credentials.get("read_only")
        if credential is None or {"read_only"} & (self.duplicates | self.unknown) or self.found.doubted("credentials.read_only"):
            return
        if not self.room():
            self.note(f"not checked: whether credentials.read_only may read IPs (the preflight's {MAX_REQUESTS} requests are spent); its"
                      " scenario checks it")
            return
        response = self.send("GET", READ_IP_PATH, credential, params={"ip_address[id]": PROBE_IP_ID})
        if code_of(response) == "scope_not_granted":
            self.doubt("credentials.read_only", READ_ONLY, f"{read_only_cannot_read(said(response))}; its scenario is not run ({self.where})")
        elif code_of(response) != "ip_address_not_found" and response.status_code != 200:
            self.note(f"credentials.read_only got {said(response)} reading an IP no target has, not 404 ip_address_not_found; the scenario"
                      " will judge it")

    def problem(self, message: str) -> None:
        self.found.problems.append(message)

    def note(self, message: str) -> None:
        self.found.notes.append(message)

    def doubt(self, key: str, promise: str, message: str) -> None:
        self.found.doubts.append(Doubt(key, promise, message))


def preflight(target: Target, fixtures: TargetFixtures, on_wait: Callable[[str], None] | None = None) -> Preflight:
    """Check the setup against the target; SetupUnreachable when it cannot be reached at all, NotChecked when it could not be
    asked; `on_wait` hears of a wait for a spent rate window before it."""
    return Checker(target, fixtures, on_wait).run()


def setup_verdict(found: Preflight) -> str:
    """`setup ok`, or `setup usable, N doubt(s)` when the tests run but some promises fail for what the preflight doubts."""
    if found.doubts:
        return f"setup usable, {len(found.doubts)} doubt(s)"
    return "setup ok"


def stop_message(found: Preflight) -> str:
    """The one message a run stops with: one line per problem."""
    count = f"{len(found.problems)} problem{'s' if len(found.problems) != 1 else ''}"
    lines = [f"katapult-conformance preflight: the setup is wrong ({count}):"]
    return "\n".join([*lines, *(f"katapult-conformance setup problem: {problem}" for problem in found.problems)])
