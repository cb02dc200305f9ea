"""The allocation ledger: every IP the suite touches is recorded, put back, and verified at the end."""
from __future__ import annotations

from dataclasses import dataclass

from conformance import api
from conformance.target import Target, TargetError
from conformance.targetfile import Credential, IPRef

FREE = "free"


@dataclass(frozen=True)
class Drift:
    """An IP not back in its starting state."""

    ip: IPRef
    started: str | None
    now: str | None

    def __str__(self) -> str:
        return f"{self.ip.id} ({self.ip.address}): was {self.started or FREE}, now {self.now or FREE}"


class AllocationLedger:
    """Remembers each touched IP's starting holder and undoes what the suite changed (outside the request budget)."""

    def __init__(self, target: Target, credential: Credential) -> None:
        self.target = target
        self.credential = credential
        self.started: dict[IPRef, str | None] = {}
        self.dirty: set[IPRef] = set()

    def touch(self, ip: IPRef) -> str | None:
        """Record the IP's starting holder (first time only) and mark it for restoring; returns the current holder."""
        current = api.holder_of(self.target, self.credential, ip)
        self.started.setdefault(ip, current)
        self.dirty.add(ip)
        return current

    def holder(self, ip: IPRef) -> str | None:
        """The IP's holder now."""
        return api.holder_of(self.target, self.credential, ip)

    def restore(self) -> list[Drift]:
        """Put every dirty IP back: unallocate what started free; return what could not be restored."""
        drifts = []
        for ip in sorted(self.dirty, key=lambda ip: ip.id):
            try:
                now = api.holder_of(self.target, self.credential, ip, budgeted=False)
                if now != self.started[ip] and self.started[ip] is None:
                    api.unallocate(self.target, self.credential, ip, budgeted=False)
                    now = api.holder_of(self.target, self.credential, ip, budgeted=False)
            except TargetError as error:
                drifts.append(Drift(ip, self.started[ip], f"unknown ({error})"))
                continue
            if now != self.started[ip]:
                drifts.append(Drift(ip, self.started[ip], now))
        self.dirty.clear()
        return drifts

    def verify(self) -> list[Drift]:
        """Read every IP ever touched and list those not in their starting state."""
        drifts = []
        for ip, started in sorted(self.started.items(), key=lambda item: item[0].id):
            try:
                now = api.holder_of(self.target, self.credential, ip, budgeted=False)
            except TargetError as error:
                drifts.append(Drift(ip, started, f"unknown ({error})"))
                continue
            if now != started:
                drifts.append(Drift(ip, started, now))
        return drifts
