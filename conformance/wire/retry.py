"""A request that meets the network, not the server: which failures are sent again, how long to wait, and what the run saw.

Only an answer is ever judged. A connection refused, reset or closed without an answer, and a gateway's own error page in
front of the API (502/503/504 without the API's marks), are the network's: the request is sent again after a short
jittered backoff, a bounded number of times (--request-retries). A read timeout is not: the server took the request and
did not answer in time, which is the server's to answer for.
"""
from __future__ import annotations

import enum
import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

# Backoff before the n-th resend: BACKOFF_BASE * 2**(n-1), times a jitter in [1 - JITTER, 1 + JITTER), at most BACKOFF_CAP.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 4.0
JITTER = 0.5
DEFAULT_RETRIES = 3
GATEWAY_STATUSES = frozenset({502, 503, 504})
# Set on an answer that took more than one attempt: the Retried record of what went wrong before it.
RETRIED = "katapult_conformance_retried"


class Lost(enum.Enum):
    """How an attempt failed without an answer from the API."""

    # The connection failed before the request went out (refused, reset on connect, no connection in time): nothing was sent.
    BEFORE_SENDING = "before sending"
    # The connection closed (or was reset) after the request went out: the server may have acted on it.
    ANSWER_LOST = "answer lost"
    # A gateway in front of the API answered with its own error page: the request may or may not have reached the API.
    GATEWAY = "gateway page"

    @property
    def words(self) -> str:
        """What a reader calls it."""
        return "gateway's error page" if self is Lost.GATEWAY else "dropped connection"

    @property
    def may_have_acted(self) -> bool:
        """Whether the server may have acted on the request before its answer was lost."""
        return self is not Lost.BEFORE_SENDING


def classify(error: httpx.TransportError) -> Lost | None:
    """The kind of loss a transport error is, or None when it is not the network's (a read or write timeout: not resent)."""
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Lost.BEFORE_SENDING
    if isinstance(error, httpx.TimeoutException):
        return None
    if isinstance(error, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError | httpx.CloseError):
        return Lost.ANSWER_LOST
    return None


def gateway_page(response: httpx.Response) -> bool:
    """A 502/503/504 without the API's marks (no X-Request-Id, not the JSON error envelope): a gateway's page, not the API's answer."""
    if response.status_code not in GATEWAY_STATUSES or response.headers.get("X-Request-Id"):
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return True
    error = body.get("error") if isinstance(body, dict) else None
    return not (isinstance(error, dict) and isinstance(error.get("code"), str))


@dataclass(frozen=True)
class Attempt:
    """One attempt at a request, told to the transport's attempt observers: its answer, or how it was lost, and whether another follows.

    `number` counts from 1; `final` is False when the request is sent again after this attempt. `response` is the API's
    answer (None when lost); a gateway's page is `lost` GATEWAY with its `response` kept. `probe`: the transport's own
    request asking whether the target answers at all.
    """

    request: httpx.Request
    number: int
    final: bool
    response: httpx.Response | None = None
    lost: Lost | None = None
    reason: str = ""
    probe: bool = False


@dataclass(frozen=True)
class Retried:
    """What an answered request met before its answer: each failed attempt's kind of loss, in order."""

    losses: tuple[Lost, ...]

    @property
    def attempts(self) -> int:
        """Attempts it took, the answered one included."""
        return len(self.losses) + 1

    def describe(self) -> str:
        """e.g. `retried after 1 dropped connection`, for the request log."""
        counts = Counter(loss.words for loss in self.losses)
        return "retried after " + " and ".join(f"{count} {what}{'s' if count > 1 else ''}" for what, count in counts.items())


@dataclass
class RetryPolicy:
    """How many times a lost request is sent again, and the seeded jitter of the waits between (deterministic per seed)."""

    retries: int = DEFAULT_RETRIES
    seed: int = 0
    base: float = BACKOFF_BASE
    cap: float = BACKOFF_CAP
    random: random.Random = field(init=False, repr=False)
    lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    @property
    def attempts(self) -> int:
        """Attempts per request, the first included."""
        return self.retries + 1

    def backoff(self, resend: int) -> float:
        """Seconds to wait before the `resend`-th resend (1 for the first)."""
        with self.lock:
            jitter = self.random.uniform(1 - JITTER, 1 + JITTER)
        return float(min(self.cap, self.base * 2 ** (resend - 1) * jitter))


@dataclass
class NetworkHealth:
    """What the run's requests met on the network: how many were sent again and why, how many never got an answer."""

    requests: int = 0
    # Requests answered after one or more lost attempts, and those among them (or unanswered) that failed at least twice.
    retried: int = 0
    failed_twice: int = 0
    # Failed attempts by kind of loss.
    losses: Counter[str] = field(default_factory=Counter)
    # Requests that failed on every attempt while the target answered others (a finding), and answers lost after the
    # server may have acted, not sent again (that exchange left unjudged).
    unanswered: int = 0
    lost_unjudged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def answered(self, losses: tuple[Lost, ...]) -> None:
        """A request got its answer after these lost attempts (none: the first attempt)."""
        with self.lock:
            self.requests += 1
            if losses:
                self.retried += 1
                self.failed_twice += len(losses) >= 2
                self.losses.update(loss.name for loss in losses)

    def given_up(self, losses: tuple[Lost, ...], *, unjudged: bool) -> None:
        """A request got no answer: every attempt lost (`unjudged` False), or an answer lost and not sent again (`unjudged`)."""
        with self.lock:
            self.requests += 1
            self.failed_twice += len(losses) >= 2
            self.losses.update(loss.name for loss in losses)
            if unjudged:
                self.lost_unjudged += 1
            else:
                self.unanswered += 1

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report and for shipping between processes."""
        return {"requests": self.requests, "retried": self.retried, "failed_twice": self.failed_twice, "losses": dict(self.losses),
                "unanswered": self.unanswered, "lost_unjudged": self.lost_unjudged}

    def add(self, raw: dict[str, Any]) -> None:
        """Add another process's counts (xdist workers)."""
        with self.lock:
            self.requests += int(raw["requests"])
            self.retried += int(raw["retried"])
            self.failed_twice += int(raw["failed_twice"])
            self.losses.update({str(kind): int(count) for kind, count in raw["losses"].items()})
            self.unanswered += int(raw["unanswered"])
            self.lost_unjudged += int(raw["lost_unjudged"])

    def describe(self) -> str:
        """One line, e.g. `6 of 296 requests retried after a dropped connection; none failed twice`."""
        if not self.retried and not self.unanswered and not self.lost_unjudged:
            return f"none of {self.requests} requests needed a retry"
        gateway, dropped = self.losses.get(Lost.GATEWAY.name, 0), self.losses.get(Lost.BEFORE_SENDING.name, 0) + self.losses.get(
            Lost.ANSWER_LOST.name, 0)
        why = " or ".join(what for what, count in (("a dropped connection", dropped), ("a gateway's error page", gateway)) if count)
        parts = [f"{self.retried} of {self.requests} requests retried after {why or 'a dropped connection'}"]
        parts.append(f"{self.failed_twice} failed twice or more" if self.failed_twice else "none failed twice")
        if self.lost_unjudged:
            parts.append(f"{self.lost_unjudged} answer(s) lost after the server may have acted, left unjudged")
        if self.unanswered:
            parts.append(f"{self.unanswered} got no answer on any attempt")
        return "; ".join(parts)
