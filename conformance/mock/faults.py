"""The project's own fault injector: a network in front of the mock that loses requests and answers, and front ends that are
correct HTTP but unlike the mock's plain answers (served: `katapult-conformance mock --drop-before 0.01 --drop-after 0.01`).

A request dropped *before* the server never reaches it; an answer dropped *after* is lost once the server has acted on the
request. Either way the client sees a connection closed without a response. A gateway's error page is a 502 HTML page
without the API's marks (no X-Request-Id, no JSON error envelope). Every choice comes from one seeded random stream, so a
run's faults are the same for the same seed and order of requests.
"""
from __future__ import annotations

import enum
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx

GATEWAY_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>"
GATEWAY_CONTENT_TYPE = "text/html"
CLOSED = "Server disconnected without sending a response."


@dataclass(frozen=True)
class FrontEnd:
    """How a real server or proxy in front may answer, all of it correct HTTP: `Connection: close` on every answer, gzip when the
    client accepts it, chunked bodies, `; charset=utf-8` on the JSON content type."""

    connection_close: bool = False
    gzip: bool = False
    chunked: bool = False
    charset: bool = False


class Fault(enum.Enum):
    """What the network does to one request."""

    DROP_BEFORE = "dropped before the server"
    GATEWAY = "a gateway's error page"
    DROP_AFTER = "answer dropped after the server acted"


@dataclass(frozen=True)
class Faults:
    """The share of requests dropped before the server acts, of answers dropped after it acted, and of gateway pages; the seed."""

    drop_before: float = 0.0
    drop_after: float = 0.0
    gateway: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("drop_before", "drop_after", "gateway"):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"--{name.replace('_', '-')} must be a share between 0 and 1, got {share}")

    @property
    def any(self) -> bool:
        """Whether any fault is injected at all."""
        return bool(self.drop_before or self.drop_after or self.gateway)

    @classmethod
    def parse(cls, text: str) -> Faults:
        """`drop-before=0.01,drop-after=0.01,gateway=0,seed=3` (as KATAPULT_MOCK_FAULTS spells it)."""
        values: dict[str, float | int] = {}
        for part in filter(None, (item.strip() for item in text.split(","))):
            key, _, value = part.partition("=")
            name = key.strip().replace("-", "_")
            if name not in ("drop_before", "drop_after", "gateway", "seed"):
                raise ValueError(f"unknown fault {key.strip()!r} in {text!r}; use drop-before, drop-after, gateway and seed")
            try:
                values[name] = int(value) if name == "seed" else float(value)
            except ValueError:
                raise ValueError(f"{key.strip()}={value!r} in {text!r} is not a number") from None
        return cls(**values)  # type: ignore[arg-type]


class Injector:
    """Draws each request's fault from the seeded stream: one draw before the server, one after."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.random = random.Random(faults.seed)
        self.lock = threading.Lock()
        self.injected: dict[Fault, int] = dict.fromkeys(Fault, 0)

    def before(self) -> Fault | None:
        """DROP_BEFORE, GATEWAY or None for a request about to reach the server."""
        with self.lock:
            draw = self.random.random()
            fault = (Fault.DROP_BEFORE if draw < self.faults.drop_before
                     else Fault.GATEWAY if draw < self.faults.drop_before + self.faults.gateway else None)
            if fault is not None:
                self.injected[fault] += 1
            return fault

    def after(self) -> bool:
        """Whether the server's answer to this request is dropped."""
        with self.lock:
            dropped = self.random.random() < self.faults.drop_after
            if dropped:
                self.injected[Fault.DROP_AFTER] += 1
            return dropped


class FaultyHandler:
    """The in-process mock's handler behind the injector: a dropped request or answer is a connection closed without a response."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response], faults: Faults) -> None:
        self.handler = handler
        self.injector = Injector(faults)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        fault = self.injector.before()
        if fault is Fault.DROP_BEFORE:
            raise httpx.RemoteProtocolError(CLOSED, request=request)
        if fault is Fault.GATEWAY:
            return httpx.Response(502, headers={"Content-Type": GATEWAY_CONTENT_TYPE}, content=GATEWAY_PAGE)
        response = self.handler(request)
        if self.injector.after():
            raise httpx.RemoteProtocolError(CLOSED, request=request)
        return response
