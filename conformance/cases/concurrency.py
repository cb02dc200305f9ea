"""Requests sent at the same moment: one thread each, released together by a barrier, paced and budgeted as one batch."""
from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from conformance.setup.fixtures import Credential
from conformance.wire.paths import ALLOCATE_PATH
from conformance.wire.transport import UNSET, BudgetExhausted, Target

BARRIER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Call:
    """One request of a batch, as `Target.send` takes it."""

    credential: Credential | None = None
    json: Any = UNSET
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"
    path: str = ALLOCATE_PATH


def reserve(target: Target, count: int, headers: Mapping[str, str]) -> None:
    """Take `count` slots from the budget, the pacer and the rate-limit window first: a batch sent at once stays within all three."""
    if target.max_requests is not None and target.sent + count > target.max_requests:
        raise BudgetExhausted(f"the request budget of {target.max_requests} cannot take {count} more concurrent requests; raise --max-requests")
    if target.remaining is not None and target.remaining - count < target.pacer.floor:
        # As the pacer does when the window runs low: a batch must not run into a 429 that no request alone would get.
        target.pacer.wait_for_window_end(headers)
        target.remaining = None
    for _ in range(count):
        target.pacer.before_send()


def server_order(responses: Sequence[httpx.Response]) -> list[httpx.Response]:
    """The responses in the order the server counted them (X-RateLimit-Remaining falling), so observers see one window count down."""

    def counted(response: httpx.Response) -> float:
        remaining = response.headers.get("X-RateLimit-Remaining", "")
        return -int(remaining) if remaining.isdigit() else float("inf")

    return sorted(responses, key=counted)


def send_together(target: Target, calls: Sequence[Call]) -> list[httpx.Response]:
    """Send every call at the same moment; the responses in the order of `calls`."""
    reserve(target, len(calls), next((call.credential.headers for call in calls if call.credential is not None), {}))
    barrier = threading.Barrier(len(calls))

    def send(call: Call) -> httpx.Response:
        barrier.wait(BARRIER_TIMEOUT)
        return target.send(call.method, call.path, credential=call.credential, json=call.json, content=call.content,
                           headers=call.headers, paced=False, observed=False)

    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="katapult-concurrent") as pool:
        futures = [pool.submit(send, call) for call in calls]
        outcomes = [future.exception() or future.result() for future in futures]
    responses = [outcome for outcome in outcomes if isinstance(outcome, httpx.Response)]
    for response in server_order(responses):
        target.observe(response)
    if responses:
        target.pacer.after_response(server_order(responses)[-1])
    failure = next((outcome for outcome in outcomes if isinstance(outcome, BaseException)), None)
    if failure is not None:
        raise failure
    return [outcome for outcome in outcomes if isinstance(outcome, httpx.Response)]
