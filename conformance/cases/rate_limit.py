"""The 429 burst: spend what a token's window has left until the server answers 429, as cheaply as the run allows.

A burst costs what the window has left when it starts. The pacer leaves a fifth of every window unspent (HEADROOM), so
the burst goes where the pacer would wait anyway (live, and in process on the mock's virtual clock): the first time a
window is spent to its floor, before waiting for its end. A run that never spends a window that far bursts in the test
itself, from whatever is left.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from conformance.setup.fixtures import Credential
from conformance.wire import api
from conformance.wire.pacing import Burst, burst, remaining_of
from conformance.wire.paths import ALLOCATE_PATH
from conformance.wire.transport import Target, TargetError

# Past what the window has left, a few more to be sure; bounded so a server that never limits still ends the burst.
BURST_MARGIN = 20


@dataclass(frozen=True)
class Provoked:
    """A burst's first answer (its Remaining sizes the burst) and what the burst saw; no burst when the first had no Remaining."""

    first: httpx.Response
    burst: Burst | None


def sender(target: Target, credential: Credential, interface_id: str, ip_id: str) -> Callable[[], httpx.Response]:
    """One request past authentication that changes nothing: an unknown IP for an unknown interface, unpaced."""
    body = api.allocate_body(interface_id, {"id": ip_id})
    return lambda: target.send("POST", ALLOCATE_PATH, credential=credential, json=body, paced=False)


def provoke(send: Callable[[], httpx.Response]) -> Provoked:
    """Send until the first 429, sized from the first answer's X-RateLimit-Remaining; once more if the window turned over."""
    first = send()
    remaining = remaining_of(first)
    if remaining is None:
        return Provoked(first, None)
    result = burst(send, remaining + BURST_MARGIN, remaining=remaining)
    if result.limited is None and result.turned_over:
        fresh = remaining_of(send()) or remaining
        result = burst(send, fresh + BURST_MARGIN, remaining=fresh)
    return Provoked(first, result)


class WindowEndBurst:
    """The pacer's hook for the first window spent to its floor: provoke the 429 there, keep what it saw for the test."""

    def __init__(self, send: Callable[[], httpx.Response]) -> None:
        self.send = send
        self.provoked: Provoked | None = None

    def __call__(self, response: httpx.Response) -> None:
        # Inside another test's request: whatever stops the burst (a spent budget is a TargetError too, as is an unreachable
        # target) is left to the 429 test, which bursts itself when nothing was provoked here.
        try:
            self.provoked = provoke(self.send)
        except TargetError:
            self.provoked = None
