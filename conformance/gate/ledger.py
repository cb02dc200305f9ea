"""The allocation ledger: every fixture IP's starting holder, read once; whatever moves is put back and verified."""
from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

import httpx

from conformance.contract.findings import NotReached
from conformance.gate.putback import Drift
from conformance.setup.fixtures import Credential, IPRef
from conformance.wire import api
from conformance.wire.exchange import curl_post
from conformance.wire.interrupts import WaitCut
from conformance.wire.paths import ALLOCATE_PATH, UNALLOCATE_PATH
from conformance.wire.transport import Target, TargetError

# A holder not read since a request could have changed it: its put-back command unallocates first, to be sure.
UNKNOWN = "unknown"
INTERRUPTED_AGAIN = "interrupted again before it was put back"


def curl(base_url: str, path: str, body: object, credential: Credential) -> str:
    """A command that sends one request as the credential, named by the variable the fixtures read it from (never its value)."""
    return curl_post(f"{base_url}{path}", credential.shell_headers(), body)


class AllocationLedger:
    """Knows each fixture IP's starting holder; reads holders only when a request could have changed one; puts back what moved."""

    def __init__(self, target: Target, credential: Credential) -> None:
        self.target = target
        self.credential = credential
        self.started: dict[IPRef, str | None] = {}
        self.dirty: set[IPRef] = set()
        # A holder (virtual machine id) -> an interface of it, to give back an IP that started on it.
        self.homes: dict[str, str] = {}
        # Fixture interfaces whose virtual machine is not known yet (the token may not read interfaces): tried as a way home.
        self.unplaced: list[str] = []
        self.known: dict[IPRef, str | None] = {}
        self.stale: set[IPRef] = set()
        self.moved_unasked: list[Drift] = []
        # IPs whose reading a second interrupt cut short while nothing since their last reading could have moved them.
        self.unchecked: list[IPRef] = []
        self.lock = threading.Lock()

    def start(self, holders: Mapping[IPRef, str | None]) -> None:
        """Record starting holders read elsewhere (the preflight); the first record of an IP is the one kept."""
        for ip, holder in holders.items():
            self.started.setdefault(ip, holder)
            self.known.setdefault(ip, holder)

    def read_start(self, ips: Iterable[IPRef]) -> None:
        """Read the starting holder of every IP not yet recorded (outside the budget: this is what cleanup restores to)."""
        for ip in ips:
            if ip not in self.started:
                self.started[ip] = self.read(ip, budgeted=False)

    def add_home(self, interface_id: str, machine: str) -> None:
        """An interface the suite may allocate to, under the holder its allocations show (its virtual machine)."""
        self.homes.setdefault(machine, interface_id)
        self.homes.setdefault(interface_id, interface_id)
        if interface_id in self.unplaced:
            self.unplaced.remove(interface_id)

    def add_unplaced(self, interface_id: str) -> None:
        """An interface the suite may allocate to whose virtual machine is not known yet: a way home to try when none is known."""
        if interface_id not in self.unplaced and interface_id not in self.homes:
            self.unplaced.append(interface_id)

    def observe(self, response: httpx.Response) -> None:
        """After a request that could have changed a holder, forget what is known of the IPs it names (all of them on a 200 naming none)."""
        request = response.request
        if request.method == "GET" or not self.started:
            return
        named = self.named(request)
        if response.status_code == 200 and not named:
            named = set(self.started)
        with self.lock:
            self.stale |= named
            self.dirty |= named

    def settle_lost(self, request: httpx.Request) -> bool:
        """The answer to `request` was lost after the server may have acted: mark what it names for checking (cleanup puts back
        what it moved, though no answer said so), read it, and say whether it is as it was (then the same request may be sent
        again and its answer judged); not known before, or moved, it is not (that exchange is left unjudged)."""
        named = self.named(request) if request.method != "GET" else set()
        if not named:
            # Names no fixture IP: on a correct server it moved none, and the end-of-run check finds any it moved unasked.
            return True
        with self.lock:
            before = {ip: self.known[ip] for ip in named if ip in self.known and ip not in self.stale}
            self.dirty |= named
            self.stale |= named
        now = {ip: self.read(ip) for ip in sorted(named, key=lambda ip: ip.id)}
        return len(before) == len(named) and now == before

    def named(self, request: httpx.Request) -> set[IPRef]:
        """The fixture IPs a request names anywhere (path, query or body)."""
        text = request.url.raw_path.decode("ascii", "replace") + " " + request.content.decode("utf-8", "replace")
        return {ip for ip in self.started if ip.id in text or ip.address in text}

    def read(self, ip: IPRef, *, budgeted: bool = True) -> str | None:
        """Read the IP's holder from the target and remember it."""
        holder = api.holder_of(self.target, self.credential, ip, budgeted=budgeted)
        with self.lock:
            self.known[ip] = holder
            self.stale.discard(ip)
        return holder

    def holder(self, ip: IPRef, *, budgeted: bool = True) -> str | None:
        """The IP's holder now: read when a request since the last read could have changed it."""
        with self.lock:
            if ip in self.known and ip not in self.stale:
                return self.known[ip]
        return self.read(ip, budgeted=budgeted)

    def touch(self, ip: IPRef) -> str | None:
        """Mark the IP for checking at the test's end; returns its holder now."""
        if ip not in self.started:
            self.started[ip] = self.holder(ip)
        self.dirty.add(ip)
        return self.holder(ip)

    def suspect(self, ips: Iterable[IPRef]) -> None:
        """IPs a request may have moved though it named none: read afresh when next asked, put back at the test's end."""
        chosen = set(ips) & set(self.started)
        with self.lock:
            self.stale |= chosen
            self.dirty |= chosen

    def touch_free(self, ip: IPRef) -> None:
        """Touch an IP a test needs free; held now (an earlier deviation was not put back), the test is not reached."""
        holder = self.touch(ip)
        if holder is not None:
            raise NotReached(f"{ip.id} ({ip.address}) is listed as allocatable but is held by {holder}: an earlier allocation was not undone"
                             " (see cleanup), or the target fixtures list a held IP")

    def undo(self, ip: IPRef) -> None:
        """Quickly put back an IP a request just allocated (inside a test: counted against the budget)."""
        if self.started.get(ip) is None:
            api.unallocate(self.target, self.credential, ip, resend=True)
        else:
            self.put_back(ip, self.started[ip], self.holder(ip), budgeted=True)

    def put_back(self, ip: IPRef, started: str | None, now: str | None, *, budgeted: bool = False) -> None:
        """Unallocate what holds the IP now; give it back to its starting holder when the suite knows an interface of it."""
        if now == started:
            return
        # Putting back is sent again whatever became of a lost answer: what it was for is read afterwards anyway.
        if now is not None:
            api.unallocate(self.target, self.credential, ip, budgeted=budgeted, resend=True)
        home = self.homes.get(started) if started is not None else None
        if home is not None:
            api.allocate(self.target, self.credential, home, {"id": ip.id}, budgeted=budgeted, resend=True)
        elif started is not None:
            self.find_home(ip, started, budgeted=budgeted)

    def find_home(self, ip: IPRef, started: str, *, budgeted: bool) -> None:
        """No interface of `started` is known: give the IP to each unplaced interface in turn, kept where the 200 names `started`."""
        for interface in list(self.unplaced):
            response = api.allocate(self.target, self.credential, interface, {"id": ip.id}, budgeted=budgeted, resend=True)
            named = api.machine_named_by(response)
            if named is not None and named[0] == interface:
                self.add_home(interface, named[1])
                if named[1] == started:
                    return
            if response.status_code == 200:
                api.unallocate(self.target, self.credential, ip, budgeted=budgeted, resend=True)

    def fix_command(self, ip: IPRef, started: str | None, now: str | None) -> str:
        """What to run by hand to put the IP back."""
        steps = []
        if now is not None:
            steps.append(curl(self.target.base_url, UNALLOCATE_PATH, {"ip_address": {"id": ip.id}}, self.credential))
        if started is not None:
            home = self.homes.get(started, f"<an interface of {started}>")
            steps.append(curl(self.target.base_url, ALLOCATE_PATH, api.allocate_body(home, {"id": ip.id}), self.credential))
        return " && ".join(steps)

    def pending(self) -> list[Drift]:
        """The IPs a test moved that are not known to be back yet, each with the command that puts it back (before cleanup waits)."""
        with self.lock:
            unsure = sorted(self.dirty, key=lambda ip: ip.id)
        believed = {ip: self.believed(ip) for ip in unsure}
        return [Drift(ip, self.started.get(ip), believed[ip], self.fix_command(ip, self.started.get(ip), believed[ip]))
                for ip in unsure if believed[ip] != self.started.get(ip)]

    def believed(self, ip: IPRef) -> str | None:
        """The IP's holder as last read, or UNKNOWN when a request since could have changed it (nothing is sent)."""
        with self.lock:
            return self.known[ip] if ip in self.known and ip not in self.stale else UNKNOWN

    def restore(self, ips: Iterable[IPRef] | None = None, *, fresh: bool = False) -> list[Drift]:
        """Put every dirty IP (or those given) back in its starting state (outside the budget); return what could not be.

        An IP that could not be put back stays dirty: it is still the suite's to put back, not one the target moved unasked.
        """
        chosen = sorted(self.dirty if ips is None else set(ips), key=lambda ip: ip.id)
        if self.target.gone is not None:
            return self.unverified(chosen)
        drifts = []
        for ip in chosen:
            started = self.started.get(ip)
            unasked = fresh and ip not in self.dirty
            try:
                now = self.read(ip, budgeted=False) if fresh else self.holder(ip, budgeted=False)
                found = now
                if now != started:
                    self.put_back(ip, started, now)
                    now = self.read(ip, budgeted=False)
            except WaitCut:
                # As it started when last read, and no request since could have moved it: not checked, but not left changed.
                if self.believed(ip) == started:
                    if ip not in self.unchecked:
                        self.unchecked.append(ip)
                    continue
                drifts.append(Drift(ip, started, f"{UNKNOWN} ({INTERRUPTED_AGAIN})", self.fix_command(ip, started, self.believed(ip))))
                continue
            except TargetError as error:
                drifts.append(Drift(ip, started, f"unknown ({error})", self.fix_command(ip, started, self.believed(ip))))
                continue
            if now != started:
                drifts.append(Drift(ip, started, now, self.fix_command(ip, started, now)))
                continue
            if unasked and found != started:
                self.moved_unasked.append(Drift(ip, started, found, put_back=True))
            with self.lock:
                self.dirty.discard(ip)
        return drifts

    def unverified(self, ips: Iterable[IPRef]) -> list[Drift]:
        """The target is gone: every IP that may have moved since it was last read as it started (a request named it, or it was
        not back), with the commands that put it back whatever holds it now; nothing is sent."""
        drifts = []
        with self.lock:
            for ip in ips:
                started, known = self.started.get(ip), self.known.get(ip, UNKNOWN)
                if ip in self.dirty or ip in self.stale or known != started:
                    drifts.append(Drift(ip, started, f"{UNKNOWN} (the target stopped answering)", self.fix_command(ip, started, UNKNOWN)))
        return drifts

    def verify(self) -> list[Drift]:
        """At the end: read every fixture IP afresh, put back whatever moved, and list those not in their starting state."""
        return self.restore(list(self.started), fresh=True)
