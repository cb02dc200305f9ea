"""Which virtual machine each network interface is on: read where the token may, else learnt from allocate_ip's 200s.

The API names an IP's holder by virtual machine, so the suite needs each interface's. Reading an interface needs scope
virtual_machines or virtual_machines:read, which a least-privilege token for allocate_ip (ip_addresses only) lacks; its
200s name the interface's virtual machine too, so such a run learns them from what the endpoint answers.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

from conformance.setup.fixtures import Credential
from conformance.wire import api
from conformance.wire.transport import Target

READ_SOURCE = "the interface read (GET virtual_machine_network_interface)"
ANSWERS_SOURCE = "allocate_ip's 200 answers (virtual_machine_network_interface.virtual_machine.id)"


class InterfaceMachines:
    """Each interface's virtual machine, and where it was learnt; `learn` observes every response."""

    def __init__(self, target: Target, credential: Credential) -> None:
        self.target = target
        self.credential = credential
        self.known: dict[str, str] = {}
        # Why the token may not read interfaces (naming the scope), once the read was refused for scope.
        self.read_refused: str | None = None
        # Told of every interface learnt from an answer (the ledger keeps it as a way home for IPs of that machine).
        self.on_learn: list[Callable[[str, str], None]] = []
        self.lock = threading.Lock()

    @property
    def source(self) -> str:
        """Where the virtual machines come from, for the header and the preflight."""
        return ANSWERS_SOURCE if self.read_refused is not None else READ_SOURCE

    def describe(self) -> str:
        """One line: the source, and why when it is the answers."""
        if self.read_refused is None:
            return f"interface virtual machines from {READ_SOURCE}"
        return f"interface virtual machines from {ANSWERS_SOURCE}, as {self.read_refused}"

    def refused(self, reason: str) -> None:
        """The token may not read interfaces (found by the preflight, or by a read here)."""
        self.read_refused = reason

    def add(self, interface_id: str, machine: str) -> None:
        """Record an interface's virtual machine (the first record is kept)."""
        with self.lock:
            self.known.setdefault(interface_id, machine)

    def of(self, interface_id: str, *, budgeted: bool = True) -> str | None:
        """The interface's virtual machine; None while the token may not read interfaces and no 200 named it (other failures raise)."""
        with self.lock:
            if interface_id in self.known:
                return self.known[interface_id]
        if self.read_refused is None:
            try:
                self.add(interface_id, api.virtual_machine_of(self.target, self.credential, interface_id, budgeted=budgeted))
            except api.InterfaceReadRefused as refusal:
                self.refused(str(refusal))
        with self.lock:
            return self.known.get(interface_id)

    def learn(self, response: httpx.Response) -> None:
        """Observer: where the interface read is refused, an allocate_ip 200 tells its interface's virtual machine."""
        if self.read_refused is None:
            return
        named = api.machine_named_by(response)
        if named is None:
            return
        interface_id, machine = named
        with self.lock:
            new = interface_id not in self.known
            self.known.setdefault(interface_id, machine)
        if new:
            for tell in self.on_learn:
                tell(interface_id, machine)
