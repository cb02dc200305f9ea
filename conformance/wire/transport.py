"""The one way the suite sends requests: a Target wraps an httpx.Client pointed at the mock or a live URL."""
from __future__ import annotations

import datetime
import hashlib
import json as jsonlib
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx

from conformance.setup.fixtures import Credential
from conformance.setup.redaction import REDACT
from conformance.wire.interrupts import INTERRUPTS, interruptible_sleep
from conformance.wire.retry import DEFAULT_RETRIES, RETRIED, Attempt, Lost, NetworkHealth, Retried, RetryPolicy, classify, gateway_page

RATE_LIMIT_RESERVE = 5
RATE_WINDOW_SECONDS = 60.0
# Spend at most 80% of each window of the token's allowance: other clients of the same token, and clock skew, need room too.
HEADROOM = 0.8
# The share of a window that must be left for the 429 burst to go there (5 s of 60: a burst takes a second or two).
BURST_ROOM = 1 / 12
# A rise of Remaining to near Permitted is a new window (another client of the token may have spent a little of it).
NEW_WINDOW_SHARE = 0.9
UNSET: Any = object()
# The clock a live target paces by: (sleep, now), read when a live target is made. Only bench/bench.py changes it, to run
# a whole default live run against a served mock whose rate window is a sixth as long, on a clock six times as fast.
# Its sleep ends at once when an interrupt means it to (conformance.wire.interrupts).
LIVE_CLOCK: tuple[Callable[[float], None], Callable[[], float]] = (interruptible_sleep, time.monotonic)


class TargetError(Exception):
    """The target could not be used for this request; the message says what happened and what to do."""


class TargetTimeout(TargetError):
    """No response within the per-request timeout."""


class TargetUnreachable(TargetError):
    """The target refused or could not be reached."""


# Set on a response whose request was in flight beside another: its headers may be observed out of the server's order.
OVERLAPPED = "katapult_conformance_overlapped"
# A test stopped by the run's own bounds (budget, duration) was not run: its promises are `not run`, not `not reached`.
NOT_RUN_PREFIX = "not run: "


class BudgetExhausted(TargetError):
    """The live target's request budget or the run's duration is spent; the message starts with NOT_RUN_PREFIX."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason if reason.startswith(NOT_RUN_PREFIX) else NOT_RUN_PREFIX + reason)


# A test whose one exchange the network took (an answer lost after the server may have acted) judged nothing: its promises
# are `not judged (network)`, not a finding against the server.
NETWORK_PREFIX = "not judged (network): "
# Requests in a row that got no answer at all (every attempt lost, or no answer in time) before the target counts as gone.
GONE_STREAK = 3
# A route no API has: the target's router answers it (404) before authentication and the rate limiter, so asking costs nothing.
PROBE_PATH = "/katapult-conformance/probe"


def said_by(losses: tuple[Lost, ...], reason: str) -> str:
    """What every attempt at a request met, for a reader: `the server or a proxy in between closed the connection, 4 times (...)`."""
    times = f"{len(losses)} time{'s' if len(losses) != 1 else ''}"
    if all(loss is Lost.GATEWAY for loss in losses):
        return f"a gateway in front of the API answered with its own error page, {times} ({reason})"
    return f"the server or a proxy in between closed the connection, {times} ({reason})"


class ConnectionDropped(TargetError):
    """Every attempt at one request was lost while the target answers others: a finding for that request, not the network's."""

    def __init__(self, request: httpx.Request, losses: tuple[Lost, ...], reason: str) -> None:
        self.request = request
        self.losses = losses
        self.said = said_by(losses, reason)
        super().__init__(f"no answer to {request.method} {request.url.path}: {self.said}")


class AnswerLost(TargetError):
    """A request that may change state lost its answer after the server may have acted: what it did is not known, so that one
    exchange is left unjudged (its message starts with NETWORK_PREFIX); never a finding against the server."""

    def __init__(self, request: httpx.Request, reason: str) -> None:
        self.request = request
        super().__init__(f"{NETWORK_PREFIX}the answer to {request.method} {request.url.path} was lost after the server may have acted on it"
                         f" ({reason}), and what it names may have moved, so it was not sent again")


class TargetGone(TargetError):
    """The target stopped answering in the middle of the run: the run stops (exit 4), and cleanup says what to put back."""


class RateLimitStalled(TargetError):
    """X-RateLimit-Remaining stayed low after waiting out a whole window: the server's rate-limit headers misbehave."""


def token_key(headers: Mapping[str, str]) -> str:
    """Whose rate-limit window a request with these headers counts in: a hash of its Authorization header, never the token."""
    return hashlib.sha256(headers.get("Authorization", "").encode()).hexdigest()


class Pacer:
    """Keeps a live target under its rate limit; on the mock, waiting moves the virtual clock instead.

    Requests go out at most at --max-rate. Once the first X-RateLimit-Permitted is seen, no window is spent past HEADROOM:
    when X-RateLimit-Remaining falls to the rest (the floor), the pacer waits for the window's end. Windows are 60 s per
    token from its first request; the end is known from the first answer seen near the top, else a whole window is waited.
    """

    def __init__(self, min_interval: float, sleep: Callable[[float], None], now: Callable[[], float],
                 window_seconds: float = RATE_WINDOW_SECONDS) -> None:
        self.min_interval = min_interval
        self.sleep = sleep
        self.now = now
        self.window_seconds = window_seconds
        self.last_sent = float("-inf")
        self.permitted: int | None = None
        # Each token's Remaining when the pacer last waited for its window's end (until that token's count recovers);
        # recorded once the wait is over, never before: an interrupted wait waited for nothing.
        self.waited_for: dict[str, int] = {}
        # Each token whose window was spent while its wait for the window's end did not finish (an interrupt cut it): when
        # that window ends on this clock, and what it had left (nothing after a burst). Cleanup waits it out before it sends.
        self.owed: dict[str, tuple[float, int]] = {}
        self.lock = threading.Lock()
        # When each token's current window was first seen: the first answer near the top after a lower count, or after the
        # window seen before has surely ended (a token unused for a while starts its next window at its next request).
        self.window_seen_at: dict[str, float] = {}
        self.last_remaining: dict[str, int] = {}
        # Called instead of raising when Remaining never recovers; after it, Remaining is no longer trusted.
        self.on_stall: Callable[[str, httpx.Response], None] | None = None
        self.trust_remaining = True
        # Called once, the first time a window whose start the pacer saw is spent to the floor, before waiting for its end (the
        # 429 burst spends the rest).
        self.on_window_spent: Callable[[httpx.Response], None] | None = None
        # What pacing saw of the token's other clients (a window spent before the run saw it start, a Remaining that did not
        # recover), for the report; and why the pacer waits now, for the status line.
        self.shared: list[str] = []
        self.waiting_for: str | None = None
        self.waited_unseen = False

    @property
    def floor(self) -> int:
        """The X-RateLimit-Remaining the suite leaves in every window."""
        if self.permitted is None:
            return RATE_LIMIT_RESERVE
        return max(RATE_LIMIT_RESERVE, round(self.permitted * (1 - HEADROOM)))

    def before_send(self, headers: Mapping[str, str] | None = None) -> None:
        """Wait for the next slot at --max-rate; first, for the end of a window spent to its last requests whose wait was cut."""
        if headers is not None:
            self.pay_owed_wait(token_key(headers))
        with self.lock:
            gap = self.last_sent + self.min_interval - self.now()
            # Interrupted again, cleanup no longer paces: what needs no rate window's end is put back at once.
            if gap > 0 and not INTERRUPTS.cuts():
                self.sleep(gap)
            self.last_sent = self.now()

    def follow(self, response: httpx.Response, token: str) -> int | None:
        """Note the first X-RateLimit-Permitted and when this token's window was first seen; return Remaining, if given."""
        permitted = response.headers.get("X-RateLimit-Permitted", "")
        remaining = response.headers.get("X-RateLimit-Remaining", "")
        if not (permitted.isdigit() and remaining.isdigit()) or int(permitted) == 0:
            return None
        with self.lock:
            if self.permitted is None:
                self.permitted = int(permitted)
            count = int(remaining)
            last = self.last_remaining.get(token)
            top = int(permitted) * NEW_WINDOW_SHARE
            seen_at = self.window_seen_at.get(token)
            ended = seen_at is not None and self.now() - seen_at >= self.window_seconds
            if count >= top and (last is None or last < top or ended):
                self.window_seen_at[token] = self.now()
            elif ended:
                del self.window_seen_at[token]  # in a later window whose start was not seen: its end is not known
            self.last_remaining[token] = count
        return count

    def window_ends_in(self, headers: Mapping[str, str]) -> float:
        """Seconds until the window a request with these headers counts in ends, at the latest: a whole window when its start was not seen."""
        seen_at = self.window_seen_at.get(token_key(headers))
        if seen_at is None:
            return self.window_seconds
        return min(self.window_seconds, max(0.0, seen_at + self.window_seconds - self.now()))

    def window_wait(self, headers: Mapping[str, str]) -> float:
        """How long to wait for the window a request with these headers counts in to end, a second past to be sure."""
        return min(self.window_seconds, self.window_ends_in(headers) + 1.0)

    def wait_for_window_end(self, headers: Mapping[str, str]) -> None:
        """Sleep until the window a request with these headers counts in has ended, a second past to be sure."""
        self.sleep(self.window_wait(headers))

    def pay_owed_wait(self, token: str) -> None:
        """Before a request in a window spent to its last RATE_LIMIT_RESERVE requests whose wait was cut: the rest of that wait."""
        owed = self.owed.get(token)
        if owed is None:
            return
        ends_at, left = owed
        if min(left, self.last_remaining.get(token, left)) > RATE_LIMIT_RESERVE:
            return  # what is left in the window is enough for cleanup, which goes down to the reserve
        self.sleep(min(self.window_seconds + 1.0, max(0.0, ends_at - self.now())))
        if self.owed.pop(token, None) is not None:
            self.waited_for[token] = left

    def after_response(self, response: httpx.Response, *, putting_back: bool = False) -> None:
        """Wait for the window's end once it is spent to the floor; a count that does not recover is a failure.

        `putting_back`: the request put the target back as it was (cleanup, even after Ctrl-C or a cancelled CI job, which
        leaves seconds): it waits only when the window is down to its last RATE_LIMIT_RESERVE requests, and never bursts.
        """
        token = token_key(response.request.headers)
        remaining = self.follow(response, token)
        if remaining is None or not self.trust_remaining:
            return
        if remaining > self.floor:
            self.waited_for.pop(token, None)
            self.owed.pop(token, None)
            return
        if putting_back and remaining > RATE_LIMIT_RESERVE:
            return
        waited_for = self.waited_for.get(token)
        if waited_for is not None:
            if remaining > RATE_LIMIT_RESERVE:
                # Already waited for this window's end: another client of the token spends it too; go on down to the reserve.
                return
            message = (f"X-RateLimit-Remaining does not recover: still {remaining} after waiting for its {self.window_seconds:g} s"
                       f" window to end (it was {waited_for})")
            if self.on_stall is None:
                raise RateLimitStalled(message + ", so the run stops here instead of waiting on them")
            self.trust_remaining = False
            # Without a count to trust, an even pace of HEADROOM of the allowance keeps the run under the limit.
            if self.permitted is not None:
                self.min_interval = max(self.min_interval, self.window_seconds / (self.permitted * HEADROOM))
            # Another client spending the token as fast as it refills looks just like this: a shared token, not a finding (the
            # rate-limit headers promise is judged on headers that contradict themselves: RateLimitMonitor).
            note = message + ": another client of the token spends it as fast as it refills; pacing goes on by X-RateLimit-Permitted alone"
            self.shared.append(note)
            self.on_stall(note, response)
            return
        seen = token in self.window_seen_at
        # The burst needs the rest of a window whose end is known: with too little left it would run on into the next window
        # and spend that one too (a second burst); then it waits for a later window.
        roomy = seen and self.window_ends_in(response.request.headers) >= self.window_seconds * BURST_ROOM
        spent = None if putting_back or not roomy else self.on_window_spent
        if not seen and not self.waited_unseen:
            self.waited_unseen = True
            # Begun and spent by another client before this run saw its start: its end is not known, so no burst here (it could
            # run on into the next window and spend that one too); wait it out once, and burst in a window the run saw begin.
            self.shared.append(f"the token's rate-limit window was spent by another client (X-RateLimit-Remaining {remaining} of"
                               f" {self.permitted}) before this run saw it begin: the run waited up to {self.window_seconds:g} s for"
                               " the next one")
        # Owed until the wait is over: an interrupt (Ctrl-C, SIGTERM) may end the burst or the wait, and then the window was
        # not waited for. A burst leaves nothing in it.
        left = 0 if spent is not None else remaining
        headers = response.request.headers
        self.owed[token] = (self.now() + self.window_wait(headers), left)
        if spent is not None:
            self.on_window_spent = None
            spent(response)
        wait = self.window_wait(headers)
        self.owed[token] = (self.now() + wait, left)
        self.waiting_for = None if seen else "a window another client of the token spent"
        try:
            self.sleep(wait)
        finally:
            self.waiting_for = None
        self.owed.pop(token, None)
        self.waited_for[token] = remaining


class MaintenanceSwitch(Protocol):
    """What the suite may switch on an in-process mock (a live target cannot be put into maintenance)."""

    maintenance: bool


class Target:
    """Sends requests and tells observers about every response."""

    def __init__(
        self,
        kind: str,
        base_url: str,
        client: httpx.Client,
        pacer: Pacer,
        *,
        timeout: float,
        max_requests: int | None,
        mock: MaintenanceSwitch | None = None,
        max_duration: float | None = None,
        exchange: Callable[[httpx.Request], httpx.Response] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.kind = kind
        self.base_url = base_url.rstrip("/")
        self.client = client
        # How a request built by the client gets its response: the client's own send, unless the target answers in process.
        self.exchange = exchange or client.send
        self.pacer = pacer
        self.timeout = timeout
        self.max_requests = max_requests
        self.max_duration = max_duration
        self.deadline = None if max_duration is None else time.monotonic() + max_duration
        self.mock = mock
        self.sent = 0
        self.statuses: Counter[int] = Counter()
        # 429s answered to paced requests (each waited out and retried once): the pacing fell short of the server's limit.
        self.throttled = 0
        # Requests in flight, and a count that moves whenever one starts beside another (see OVERLAPPED).
        self.in_flight = 0
        self.overlaps = 0
        self.observers: list[Callable[[httpx.Response], None]] = []
        # Told of every request sent that got no answer (timeout, refused, reset), with why and the seconds it waited: the
        # HAR record keeps each as an entry without a status.
        self.unanswered: list[Callable[[httpx.Request, str, float], None]] = []
        # Concurrent sends (conformance.cases.concurrency) share the budget and the counters, and need the window's headroom.
        self.lock = threading.Lock()
        self.observing = threading.RLock()
        self.remaining: int | None = None
        self._parsed_urls: dict[str, httpx.URL] = {}
        # A request lost in transport is sent again (--request-retries); each attempt, answered or not, is told to these
        # observers (before the response's own observers hear of an answer), the request log and a HAR recorder among them.
        self.retry = retry or RetryPolicy()
        self.attempt_observers: list[Callable[[Attempt], None]] = []
        self.health = NetworkHealth()
        # The backoff between attempts sleeps on the pacer's clock as it was made (the mock's virtual one in process), never
        # through a wrapper that would show it as a wait for the rate window.
        self.backoff_sleep = pacer.sleep
        # Asked before a state-changing request whose answer was lost is sent again: True when what it names did not move (the
        # ledger reads it), so the same request may be sent again and judged; False leaves that exchange unjudged (AnswerLost).
        self.settle: Callable[[httpx.Request], bool] | None = None
        # Whether this target ever answered (then a request lost on every attempt asks whether it still does), and why it is gone.
        self.answered_once = False
        self.gone: str | None = None
        self.unanswered_streak = 0

    def out_of_time(self) -> bool:
        """Whether the run's --max-duration is spent."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def out_of_time_error(self) -> BudgetExhausted:
        """What a test past --max-duration is skipped with (its message starts with NOT_RUN_PREFIX)."""
        return BudgetExhausted(f"the run's --max-duration of {self.max_duration:g} s is spent; raise --max-duration to run more")

    @property
    def is_live(self) -> bool:
        """Whether this target is a real URL (not the in-process mock)."""
        return self.kind == "live"

    def url(self, path: str) -> str:
        """The full URL of an operation path."""
        return self.base_url + path

    def _parsed_url(self, path: str) -> httpx.URL:
        """The full URL of an operation path, parsed once per path (httpx parses a string URL on every request, ~20 us)."""
        parsed = self._parsed_urls.get(path)
        if parsed is None:
            parsed = self._parsed_urls[path] = httpx.URL(self.url(path))
        return parsed

    def send(
        self,
        method: str,
        path: str,
        *,
        credential: Credential | None = None,
        json: Any = UNSET,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        paced: bool = True,
        budgeted: bool = True,
        observed: bool = True,
        resend: bool | None = None,
    ) -> httpx.Response:
        """Send one request; a 429 on a paced request is waited out and retried once; one lost in transport is sent again.

        `budgeted=False` is for putting the target back as it was: cleanup is never refused for lack of budget.
        `observed=False` leaves the response to the caller, who passes it to `observe` (concurrent sends, in the server's order).
        `resend`: whether the request may be sent again after its answer was lost once the server may have acted on it; by
        default a GET may, and a POST may when `settle` says what it names did not move (else AnswerLost).
        """
        response = self._send_once(method, path, credential, json, content, headers, params, paced, budgeted, observed, resend)
        if paced and response.status_code == 429 and self.is_live:
            self.throttled += 1
            retry_after = response.headers.get("Retry-After", "")
            wait = float(retry_after) if retry_after.isdigit() else self.pacer.window_seconds
            self.pacer.sleep(min(wait, self.pacer.window_seconds))
            response = self._send_once(method, path, credential, json, content, headers, params, paced, budgeted, observed, resend)
        return response

    def observe(self, response: httpx.Response) -> None:
        """Count the response and tell every observer about it."""
        remaining = response.headers.get("X-RateLimit-Remaining", "")
        with self.lock:
            self.statuses[response.status_code] += 1
            self.remaining = int(remaining) if remaining.isdigit() else self.remaining
        # One response at a time: the 429 burst and the concurrency tests answer on several threads, and observers write
        # files and terminals and keep counts (two threads writing one text file lose and garble lines).
        with self.observing:
            for observer in self.observers:
                observer(response)

    def _send_once(
        self,
        method: str,
        path: str,
        credential: Credential | None,
        json: Any,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        paced: bool,
        budgeted: bool,
        observed: bool = True,
        resend: bool | None = None,
    ) -> httpx.Response:
        if self.gone is not None:
            raise TargetGone(self.gone)
        all_headers = dict(credential.headers) if credential else {}
        all_headers.update(headers or {})
        body = content
        if json is not UNSET:
            body = jsonlib.dumps(json).encode()
            all_headers.setdefault("Content-Type", "application/json")
        losses: list[Lost] = []
        while True:
            self._take_slot(budgeted)
            if paced:
                self.pacer.before_send(all_headers)
            request = self.client.build_request(method, self._parsed_url(path), content=body, headers=all_headers, params=params)
            answer = self._attempt(request, len(losses) + 1)
            if isinstance(answer, httpx.Response):
                break
            lost, reason = answer
            losses.append(lost)
            last = len(losses) >= self.retry.attempts
            # Asked even after the last attempt: whoever keeps the state hears that it may have changed unseen.
            if lost.may_have_acted and not self._may_resend(request, resend) and not last:
                self.health.given_up(tuple(losses), unjudged=True)
                self._tell(Attempt(request, len(losses), True, lost=lost, reason=reason))
                raise AnswerLost(request, reason)
            self._tell(Attempt(request, len(losses), last, lost=lost, reason=reason))
            if last:
                raise self._given_up(request, tuple(losses), reason)
            self.backoff_sleep(self.retry.backoff(len(losses)))
        self.answered_once = True
        self.unanswered_streak = 0
        self.health.answered(tuple(losses))
        if losses:
            answer.extensions[RETRIED] = Retried(tuple(losses))
        self._tell(Attempt(request, len(losses) + 1, True, response=answer))
        # Observed before the pacer may wait or burst on it, so observers see the answers in the order they came.
        if observed:
            self.observe(answer)
        if paced:
            self.pacer.after_response(answer, putting_back=not budgeted)
        return answer

    def _take_slot(self, budgeted: bool) -> None:
        """Count one attempt against the budget and the duration (each attempt is a request the target may count)."""
        with self.lock:
            if budgeted and self.max_requests is not None and self.sent >= self.max_requests:
                raise BudgetExhausted(f"the request budget of {self.max_requests} is spent; raise --max-requests to run more")
            if budgeted and self.out_of_time():
                raise self.out_of_time_error()
            self.sent += 1

    def _attempt(self, request: httpx.Request, number: int) -> httpx.Response | tuple[Lost, str]:
        """One exchange: the API's answer, or how it was lost (a timeout raises: it is the server's, and never resent)."""
        started = time.perf_counter()
        with self.lock:
            self.in_flight += 1
            overlapped = self.in_flight > 1
            if overlapped:
                self.overlaps += 1
            overlaps_before = self.overlaps
        try:
            response = self.exchange(request)
        except httpx.TransportError as error:
            reason = REDACT(str(error)) or type(error).__name__
            lost = classify(error) if "certificate" not in reason.lower() else None
            self.tell_unanswered(request, reason if lost is None else f"{lost.words}: {reason}", started)
            if lost is not None:
                return lost, reason
            self._tell(Attempt(request, number, True, reason=reason))
            if isinstance(error, httpx.TimeoutException):
                self._unanswered(f"no answer to {GONE_STREAK} requests in a row within {self.timeout:g} s each (--request-timeout)")
                raise TargetTimeout(f"no response to {request.method} {request.url.path} within {self.timeout:g} s (--request-timeout)") from None
            raise TargetUnreachable(f"cannot reach {self.base_url} ({reason}); check --target-url and that the server is up") from None
        finally:
            with self.lock:
                self.in_flight -= 1
                overlapped = overlapped or self.overlaps != overlaps_before
        if gateway_page(response):
            reason = f"{response.status_code} {response.reason_phrase}, {response.headers.get('content-type', 'no content type')}"
            self.tell_unanswered(request, f"{Lost.GATEWAY.words}: {reason}", started)
            return Lost.GATEWAY, reason
        response.extensions[OVERLAPPED] = overlapped
        if not hasattr(response, "_elapsed"):
            # Mock transports never close a network stream, so httpx leaves `elapsed` unset; checks need it.
            response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
        return response

    def _may_resend(self, request: httpx.Request, resend: bool | None) -> bool:
        """Whether a request whose answer was lost after the server may have acted is sent again (see `send`)."""
        if resend is not None:
            return resend
        return request.method in ("GET", "HEAD") or self.settle is None or self.settle(request)

    def _tell(self, attempt: Attempt) -> None:
        """Tell the attempt observers, one attempt at a time."""
        if self.attempt_observers:
            with self.observing:
                for observer in self.attempt_observers:
                    observer(attempt)

    def _unanswered(self, why: str) -> None:
        """One more request in a row without an answer; at GONE_STREAK the target counts as gone (TargetGone)."""
        with self.lock:
            self.unanswered_streak += 1
            gone = self.unanswered_streak >= GONE_STREAK
        if gone:
            self.went(why)
            raise TargetGone(self.gone)

    def went(self, why: str) -> None:
        """The target stopped answering: every later request fails at once (the run stops; cleanup says what to put back)."""
        self.gone = f"the target {self.base_url} stopped answering in the middle of the run: {why}"

    def _given_up(self, request: httpx.Request, losses: tuple[Lost, ...], reason: str) -> TargetError:
        """Every attempt lost: the target never answered (unreachable), answers others (a finding for this request), or is gone."""
        self.health.given_up(losses, unjudged=False)
        if not self.answered_once:
            return TargetUnreachable(f"cannot reach {self.base_url} ({reason}); check --target-url and that the server is up")
        if self.answers():
            with self.lock:
                self.unanswered_streak += 1
            return ConnectionDropped(request, losses, reason)
        self.went(f"{request.method} {request.url.path}: {said_by(losses, reason)}, and a request for {PROBE_PATH} got no answer either")
        assert self.gone is not None
        return TargetGone(self.gone)

    def answers(self) -> bool:
        """Whether the target answers at all now: a route no API has, answered by its router before authentication and the rate
        limiter (so it costs no rate limit), asked twice at most; counted as sent, never refused for lack of budget."""
        for number in (1, 2):
            self._take_slot(budgeted=False)
            request = self.client.build_request("GET", self._parsed_url(PROBE_PATH))
            started = time.perf_counter()
            try:
                response = self.exchange(request)
            except httpx.TransportError as error:
                reason = REDACT(str(error)) or type(error).__name__
                self.tell_unanswered(request, reason, started)
                self._tell(Attempt(request, number, number == 2, lost=classify(error) or Lost.ANSWER_LOST, reason=reason, probe=True))
            else:
                page = gateway_page(response)
                self._tell(Attempt(request, number, number == 2 or not page, response=None if page else response,
                                   lost=Lost.GATEWAY if page else None, probe=True))
                if page:
                    self.tell_unanswered(request, f"{Lost.GATEWAY.words}: {response.status_code}", started)
                else:
                    if not hasattr(response, "_elapsed"):
                        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
                    # An answer like any other (the request log and the record keep it), judged by nothing.
                    self.observe(response)
                    return True
            if number == 1:
                self.backoff_sleep(self.retry.backoff(1))
        return False

    def tell_unanswered(self, request: httpx.Request, reason: str, started: float) -> None:
        """Tell every `unanswered` observer of a request that got no answer (one at a time, as `observe` does)."""
        with self.observing:
            for observer in self.unanswered:
                observer(request, reason, time.perf_counter() - started)

    def close(self) -> None:
        """Release connections."""
        self.client.close()


def live_target(base_url: str, *, timeout: float, max_requests: int, max_rate: float, max_duration: float | None = None,
                ca_bundle: str | None = None, retries: int = DEFAULT_RETRIES, seed: int = 0) -> Target:
    """A real server at base_url, paced and budgeted, a lost request sent again `retries` times after a backoff jittered by `seed`;
    TLS trusts `ca_bundle` when given (httpx reads SSL_CERT_FILE and proxy variables)."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
    client = httpx.Client(timeout=timeout, headers={"User-Agent": "katapult-conformance"}, verify=verify)
    sleep, now = LIVE_CLOCK
    pacer = Pacer(1.0 / max_rate, sleep, now)
    return Target("live", base_url, client, pacer, timeout=timeout, max_requests=max_requests, max_duration=max_duration,
                  retry=RetryPolicy(retries, seed))
