"""What every xdist worker did, merged on the controller (its own module, so gate/keys.py can name its type)."""
from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.setup.fixtures import IPRef
from conformance.wire.profile import WireProfile
from conformance.wire.retry import NetworkHealth

if TYPE_CHECKING:
    from conformance.gate.putback import Drift


@dataclasses.dataclass
class Merged:
    """Every worker's data, merged on the controller."""

    live: bool = False
    sent: int = 0
    preflight: int = 0
    preflights: int = 0
    end_of_run: int = 0
    throttled: int = 0
    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    generated: dict[str, Counter[int]] = dataclasses.field(default_factory=dict)
    started: dict[IPRef, str | None] = dataclasses.field(default_factory=dict)
    drifts: list[Drift] = dataclasses.field(default_factory=list)
    parts: dict[str, Path] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)
    findings: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    reached: Counter[str] = dataclasses.field(default_factory=Counter)
    wire: WireProfile = dataclasses.field(default_factory=WireProfile)
    network: NetworkHealth = dataclasses.field(default_factory=NetworkHealth)
    # Why a worker stopped the run (its target stopped answering), if one did.
    stopped: str | None = None
    shared_token: list[str] = dataclasses.field(default_factory=list)

    def add(self, worker: str, data: dict[str, Any]) -> None:
        """One worker's data."""
        from conformance.gate.putback import Drift

        self.stopped = self.stopped or data.get("stopped")
        self.network.add(data["network"])
        self.shared_token += data["shared_token"]
        self.live = self.live or bool(data["live"])
        self.sent += int(data["sent"])
        self.add_preflight(int(data["preflight"]))
        self.throttled += int(data["throttled"])
        self.statuses.update({int(status): count for status, count in data["statuses"].items()})
        for name, statuses in data["generated"].items():
            self.generated.setdefault(name, Counter()).update({int(status): count for status, count in statuses.items()})
        for ip_id, address, holder in data["started"]:
            self.started.setdefault(IPRef(ip_id, address), holder)
        self.drifts += [Drift(IPRef(ip_id, address), started, now, fix, put_back) for ip_id, address, started, now, fix, put_back in data["drifts"]]
        if data["request_log"] is not None:
            self.parts[worker] = Path(data["request_log"])
        self.findings += data["findings"]
        self.reached.update(data["reached"])
        for name, counts in data["wire"].items():
            getattr(self.wire, name).update(counts)

    def add_preflight(self, requests: int) -> None:
        """One process's preflight (none ran where it sent nothing)."""
        self.preflight += requests
        self.preflights += 1 if requests else 0
