"""Watches X-RateLimit-* on every response of the run: Remaining never above Permitted, never rising mid-window."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from conformance.wire.transport import NEW_WINDOW_SHARE, OVERLAPPED, RATE_WINDOW_SECONDS, token_key

# Sixteen requests in flight exhaust a 1,000-request window in a few seconds even at 80 ms a request.
BURST_WORKERS = 16
BURST_SECONDS = 45.0
# Answers to concurrent requests arrive out of order, so Remaining can rise by about the number in flight.
CONCURRENT_RISE = 2 * BURST_WORKERS


class RateLimitMonitor:
    """Remembers the lowest Remaining per token (by hash, never the token) in its window and records inconsistencies."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, window_seconds: float = RATE_WINDOW_SECONDS) -> None:
        # A rise long after the lowest count may be a window the monitor did not see begin; only rises within one window count.
        self.clock = clock
        self.window_seconds = window_seconds
        self.lowest_at: dict[str, float] = {}
        self.lowest: dict[str, int] = {}
        self.problems: list[str] = []
        self.seen = 0
        self.permitted_seen: set[int] = set()
        self.lock = threading.Lock()

    def observe(self, response: httpx.Response) -> None:
        """Judge one response's rate-limit headers against the lowest Remaining seen so far for the same token."""
        remaining_header = response.headers.get("X-RateLimit-Remaining")
        permitted_header = response.headers.get("X-RateLimit-Permitted")
        if remaining_header is None or permitted_header is None:
            return
        with self.lock:
            if not (remaining_header.isdigit() and permitted_header.isdigit()):
                self.problems.append(f"non-integer headers: Remaining {remaining_header!r}, Permitted {permitted_header!r}")
                return
            self.seen += 1
            remaining, permitted = int(remaining_header), int(permitted_header)
            self.permitted_seen.add(permitted)
            token = token_key(response.request.headers)
            lowest = self.lowest.get(token)
            if remaining > permitted:
                self.problems.append(f"Remaining {remaining} above Permitted {permitted}")
            elif remaining >= permitted * NEW_WINDOW_SHARE:
                self.lowest[token], self.lowest_at[token] = remaining, self.clock()
                return
            elif lowest is not None and remaining > lowest + CONCURRENT_RISE:
                # A response to a request sent beside others may be observed long after later ones (a thread descheduled
                # under load), so only a request that was alone on the wire can show that Remaining rose.
                if response.extensions.get(OVERLAPPED, False):
                    return
                if self.clock() - self.lowest_at[token] < self.window_seconds:
                    self.problems.append(f"Remaining rose from {lowest} to {remaining} without a new window (Permitted {permitted})")
                self.lowest[token], self.lowest_at[token] = remaining, self.clock()
                return
            if lowest is None or remaining < lowest:
                self.lowest[token], self.lowest_at[token] = remaining, self.clock()


@dataclass
class Burst:
    """What a burst saw: the first 429 (if any), how many were sent, and whether the window turned over mid-burst."""

    limited: httpx.Response | None
    sent: int
    turned_over: bool
    remaining_seen: list[int]


def remaining_of(response: httpx.Response) -> int | None:
    """X-RateLimit-Remaining as an integer, or None."""
    value = response.headers.get("X-RateLimit-Remaining", "")
    return int(value) if value.isdigit() else None


def burst(send: Callable[[], httpx.Response], size: int, *, remaining: int | None = None, workers: int = BURST_WORKERS,
          deadline: float = BURST_SECONDS) -> Burst:
    """Send up to `size` requests, `workers` at a time, until the first 429 or the deadline: fast enough to exhaust one window
    whatever the latency, and bounded in count and time.

    No more requests are in flight than the lowest X-RateLimit-Remaining seen (starting from `remaining`) plus one, so the
    burst ends with about one 429 instead of one for every worker still sending when the limit is reached.
    """
    condition = threading.Condition()
    stop = threading.Event()
    started = time.monotonic()
    state: dict[str, Any] = {"sent": 0, "in_flight": 0, "lowest": remaining, "limited": None, "remaining": [], "error": None}

    def room() -> bool:
        lowest = state["lowest"]
        return lowest is None or state["in_flight"] <= lowest

    def worker() -> None:
        try:
            while True:
                with condition:
                    while not stop.is_set() and not room() and time.monotonic() - started < deadline:
                        condition.wait(0.05)
                    if stop.is_set() or time.monotonic() - started >= deadline or state["sent"] >= size:
                        return
                    state["sent"] += 1
                    state["in_flight"] += 1
                try:
                    response = send()
                finally:
                    with condition:
                        state["in_flight"] -= 1
                        condition.notify_all()
                with condition:
                    seen = remaining_of(response)
                    if seen is not None:
                        state["remaining"].append(seen)
                        state["lowest"] = seen if state["lowest"] is None else min(state["lowest"], seen)
                    if response.status_code == 429 and state["limited"] is None:
                        state["limited"] = response
                        stop.set()
        except Exception as error:  # a spent budget or a failed request ends the whole burst, and the caller hears of it
            with condition:
                state["error"] = state["error"] or error
                condition.notify_all()
            stop.set()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, min(workers, size)))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join(deadline + 30)
    finally:
        # Also when an interrupt ends the wait for them: the tests stop at once, so no worker sends another request.
        stop.set()
    if state["error"] is not None:
        raise state["error"]
    seen: list[int] = state["remaining"]
    return Burst(state["limited"], state["sent"], window_turned_over(seen), seen)


def window_turned_over(remaining: list[int]) -> bool:
    """Whether Remaining jumped up mid-burst by more than concurrent answers can reorder it: a new window began."""
    lowest: int | None = None
    for value in remaining:
        if lowest is not None and value > lowest + CONCURRENT_RISE:
            return True
        lowest = value if lowest is None else min(lowest, value)
    return False
