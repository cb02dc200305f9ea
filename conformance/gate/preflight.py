"""The preflight: before any test, check the setup (URL, credentials, interfaces, fixture IPs) against the target."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from conformance.contract.checks import served_past_scope
from conformance.gate.machines import ANSWERS_SOURCE, READ_SOURCE
from conformance.setup.fixtures import Credential, IPRef, TargetFixtures
from conformance.wire.api import holder_in, read_refusal
from conformance.wire.exchange import json_body
from conformance.wire.paths import ALLOCATE_PATH, READ_INTERFACE_PATH, READ_IP_PATH, UNALLOCATE_PATH
from conformance.wire.transport import ConnectionDropped, Target, TargetError, TargetGone, TargetUnreachable

API_BASE_HINT = "is --target-url the API base, ending in /core/v1?"
# What each credential must be, for a message naming a key given another's token.
WANTED = {"valid": "a token with the ip_addresses scope", "without_scope": "a token without the ip_addresses scope",
          "network_restricted": "a token restricted to networks other than this client's",
          "invalid_capabilities": "a capabilities token the server refuses"}
# What each optional credential must be refused with; a credential refused as unknown is a setup mistake.
REFUSED_AS = {"without_scope": "scope_not_granted", "network_restricted": "unauthorized_network_for_api_token",
              "invalid_capabilities": "invalid_capabilities_token"}
# An IP id no target can have (real ids have no hyphen): looking it up allocates nothing.
PROBE_IP_ID = "ip_conformance-preflight-probe"


class SetupUnreachable(TargetError):
    """The target cannot be reached at all; the message says what to check."""


class NotChecked(TargetError):
    """The target could not be asked (its token's window stayed spent, maintenance, a gateway's page, no answer): nothing is
    concluded of the setup, never `setup ok`; the run stops with exit 4, the message saying why and what to try."""


# The most requests the preflight sends, every attempt and the one resend after waiting for a rate window counted.
PREFLIGHT_LIMIT = 20
NOT_CHECKED = "the preflight could not check the setup"


@dataclass
class Preflight:
    """What the preflight found: problems stop the run; holders are every fixture IP's starting state."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    holders: dict[IPRef, str | None] = field(default_factory=dict)
    machines: dict[str, str] = field(default_factory=dict)
    networks: dict[str, str] = field(default_factory=dict)
    # Why the token may not read interfaces (naming the scope), when it may not: their machines come from allocate_ip's 200s.
    interface_read_refused: str | None = None
    requests: int = 0

    @property
    def ok(self) -> bool:
        """Whether the setup is usable."""
        return not self.problems

    @property
    def machine_source(self) -> str:
        """Where the run learns each interface's virtual machine."""
        return ANSWERS_SOURCE if self.interface_read_refused is not None else READ_SOURCE

    def lines(self) -> list[str]:
        """What it found, one line each: problems first, then notes and the starting state of each fixture IP."""
        lines = [f"setup problem: {problem}" for problem in self.problems]
        lines += [f"note: {note}" for note in self.notes]
        if self.machines or self.interface_read_refused is not None:
            # Only once the preflight got as far as the interfaces: a setup refused before them says nothing of where from.
            lines.append(f"interface virtual machines from {self.machine_source}")
        lines += [f"interface {interface} is on virtual machine {machine}" for interface, machine in self.machines.items()]
        lines += [f"{ip.id} ({ip.address}) starts {'held by ' + holder if holder else 'free'}" for ip, holder in self.holders.items()]
        lines.append(f"preflight sent {self.requests} request{'' if self.requests == 1 else 's'}")
        return lines


def code_of(response: httpx.Response) -> str | None:
    """`error.code` (or a bare `code`: a server that forgot the envelope is still told apart in setup messages)."""
    body = json_body(response) or {}
    error = body["error"] if isinstance(body.get("error"), dict) else body
    code = error.get("code")
    return str(code) if isinstance(code, str) else None


def said(response: httpx.Response) -> str:
    """Status and error code, for a message."""
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

    def send(self, method: str, path: str, credential: Credential | None = None, **kwargs: Any) -> httpx.Response:
        """One read of the setup, and only an answer that is the API's judgement of it: a 429 waits for the next window once
        (then the read is sent again), a 503 or a second 429 is NotChecked."""
        while True:
            if self.target.sent - self.started >= PREFLIGHT_LIMIT:
                raise NotChecked(f"{NOT_CHECKED}: it would need more than its {PREFLIGHT_LIMIT} requests (the network lost several);"
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
        """Every check, in dependency order."""
        try:
            self.distinct_credentials()
            if self.api_answers() and self.valid_token_works():
                self.interfaces()
                self.ips()
                self.unread_interfaces_exist()
                self.other_credentials()
        except TargetUnreachable as error:
            raise SetupUnreachable(f"{error}{self.transport_hint(str(error))}") from None
        except (ConnectionDropped, TargetGone) as error:
            raise NotChecked(f"{NOT_CHECKED}: {error}; check the target and any proxy in front of it, and run again") from None
        finally:
            self.found.requests = self.target.sent - self.started
        return self.found

    def transport_hint(self, error: str) -> str:
        """What to try when the target cannot be reached the way the URL says."""
        if "CERTIFICATE_VERIFY_FAILED" in error or "certificate" in error.lower():
            return "; for an internal CA pass --ca-bundle PATH (or set SSL_CERT_FILE)"
        if urlsplit(self.target.base_url).scheme == "http":
            return "; if the server speaks HTTPS, use an https:// --target-url"
        return ""

    def api_answers(self) -> bool:
        """The URL answers allocate_ip like the Katapult API: a JSON error for a request without a token."""
        response = self.send("POST", ALLOCATE_PATH, json={})
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
        """credentials.valid is accepted and has the ip_addresses scope (an empty body allocates nothing)."""
        response = self.send("POST", ALLOCATE_PATH, self.valid, json={})
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
            response = self.send("POST", ALLOCATE_PATH, credential, json={})
            code = code_of(response)
            if code == "invalid_api_token" and expected != "invalid_capabilities_token" and "Authorization" in credential.headers:
                self.problem(f"credentials.{key} is refused as invalid_api_token: the token is unknown or expired; renew it ({self.where})")
            elif key == "without_scope" and served_past_scope(response):
                self.scope_granted(credential, response)
            elif code != expected:
                self.note(f"credentials.{key} got {said(response)}, not {expected}; the scenarios will judge it")

    def scope_granted(self, credential: Credential, allocated: httpx.Response) -> None:
        """allocate_ip served credentials.without_scope: ask unallocate (same scope) with an empty lookup, which frees nothing."""
        # Refused there for scope, the token lacks it and allocate_ip ignores scopes (the scenarios judge it); served there too,
        # the token holds ip_addresses, a setup mistake (or a server ignoring scopes everywhere, which no request tells apart).
        response = self.send("POST", UNALLOCATE_PATH, credential, json={"ip_address": {}})
        if served_past_scope(response):
            self.problem(f"credentials.without_scope is served past the scope check (allocate_ip answered {said(allocated)} and unallocate"
                         f" {said(response)} to requests without a value, where a token without the ip_addresses scope gets 403"
                         f" scope_not_granted): it holds the scope; give a token without ip_addresses (if it truly lacks it, the"
                         f" server ignores scopes) ({self.where})")
        else:
            self.note(f"credentials.without_scope got {said(allocated)} from allocate_ip but {said(response)} from unallocate, which"
                      " needs the same scope: allocate_ip seems to ignore the scope; the scenarios will judge it")

    def problem(self, message: str) -> None:
        self.found.problems.append(message)

    def note(self, message: str) -> None:
        self.found.notes.append(message)


def preflight(target: Target, fixtures: TargetFixtures, on_wait: Callable[[str], None] | None = None) -> Preflight:
    """Check the setup against the target; SetupUnreachable when it cannot be reached at all, NotChecked when it could not be
    asked; `on_wait` hears of a wait for a spent rate window before it."""
    return Checker(target, fixtures, on_wait).run()


def stop_message(found: Preflight) -> str:
    """The one message a run stops with: one line per problem."""
    count = f"{len(found.problems)} problem{'s' if len(found.problems) != 1 else ''}"
    lines = [f"katapult-conformance preflight: the setup is wrong ({count}):"]
    return "\n".join([*lines, *(f"katapult-conformance setup problem: {problem}" for problem in found.problems)])
