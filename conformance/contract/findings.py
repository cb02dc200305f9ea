"""Findings: every deviation a check sees, attributed to the promise the check speaks for, grouped by signature.

A test fails only on the promises it exists for; what its checks see about other promises is recorded here, under
those promises, and the test goes on. Each promise's checks also note when they ran to the end (`reach`), so a
verdict of "conforms" means they ran at least once and found nothing.
"""
from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, Self

from conformance.contract.outcomes import Cause, CausedSkip
from conformance.setup.redaction import REDACT

VARIABLE_PARTS = re.compile(r"'[^']*'|\"[^\"]*\"|\b(?:vmnet|ip|vm|netw|vnet)_\w+|\d+")


class FindingFacts(Protocol):
    """What a finding is made from: a ConformanceFailure, or any exception a test ended with."""

    @property
    def title(self) -> str: ...
    @property
    def check(self) -> str: ...
    @property
    def expected(self) -> str: ...
    @property
    def received(self) -> str: ...
    @property
    def status(self) -> int | None: ...
    @property
    def code(self) -> str | None: ...
    @property
    def exchange(self) -> str: ...


class Deviation(AssertionError):
    """A promise broken: expected against received, the promise and check, the exchange; built once, its facts never change after.

    `promise` None means the promise the running test exists for: `report` raises a copy naming it (`replaced`), never changes
    this one. `recorded` is bookkeeping (whether its finding is already in the log), not a fact.
    """

    FACTS = frozenset({"title", "promise", "check", "expected", "received", "status", "code", "exchange"})

    def __init__(self, title: str, received: str, expected: str, *, promise: str | None = None, check: str | None = None,
                 status: int | None = None, code: str | None = None, exchange: str = "") -> None:
        self.title = title
        self.promise = promise
        self.check = check or title
        self.expected, self.received = expected, received
        self.status, self.code, self.exchange = status, code, exchange
        self.recorded = False
        super().__init__()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.FACTS and name in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.{name} is set once, when the failure is built; replaced() makes a new one")
        super().__setattr__(name, value)

    def replaced(self, **facts: Any) -> Self:
        """A new failure with these facts changed (its notes kept), this one left as it was."""
        unknown = set(facts) - self.FACTS
        if unknown:
            raise TypeError(f"not facts of a failure: {', '.join(sorted(unknown))}")
        copy = type(self).__new__(type(self))
        AssertionError.__init__(copy)
        copy.__dict__.update({**self.__dict__, **facts})
        return copy

    @property
    def headline(self) -> str:
        """Expected against received, in the endpoint's terms."""
        if self.title.startswith("Expected "):
            return f"expected {self.expected}, received {self.received}"
        if self.title == self.received:
            # The title already says what was received (a schema fault by path and rule).
            return f"{self.title}: expected {self.expected}"
        return f"{self.title}: expected {self.expected}, received {self.received}"

    def __str__(self) -> str:
        where = f"promise: {self.promise} · check: {self.check}" if self.promise else f"check: {self.check}"
        text = f"{self.headline}\n  [{where}]"
        if self.exchange:
            text += "\n" + self.exchange
        return REDACT(text)


def message_shape(text: str) -> str:
    """The message with its variable parts (quoted values, ids, numbers) blanked, so repeats of one deviation group."""
    return VARIABLE_PARTS.sub("…", text)[:160]


class NotReached(CausedSkip):
    """The test cannot judge what it exists for, because something it depends on already deviated (recorded elsewhere)."""

    cause = Cause.NOT_REACHED

    def __init__(self, reason: str) -> None:
        super().__init__(f"{NOT_REACHED_PREFIX}{reason}")


NOT_REACHED_PREFIX = "not reached: "


@dataclass(frozen=True)
class Signature:
    """What makes two findings the same deviation: promise, check, status, error code and the shape of what was received."""

    promise: str
    check: str
    status: int | None
    code: str | None
    shape: str

    def as_dict(self) -> dict[str, Any]:
        """As the report and the baseline spell it."""
        return {"promise": self.promise, "check": self.check, "status": self.status, "code": self.code, "shape": self.shape}


@dataclass
class Finding:
    """One deviation, how often it was seen, by which tests, with one example exchange and its reproduction."""

    signature: Signature
    title: str
    expected: str
    received: str
    example: str
    tests: list[str] = field(default_factory=list)
    count: int = 1
    excused_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report (and for shipping between processes)."""
        return {**self.signature.as_dict(), "title": self.title, "expected": self.expected, "received": self.received,
                "example": self.example, "tests": self.tests, "count": self.count, "excused_by": self.excused_by}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Finding:
        """The inverse of as_dict."""
        signature = Signature(raw["promise"], raw["check"], raw["status"], raw["code"], raw["shape"])
        return cls(signature, raw["title"], raw["expected"], raw["received"], raw["example"], list(raw["tests"]), raw["count"],
                   raw.get("excused_by"))


class FindingLog:
    """Every finding of the run, and how often each promise's checks ran to the end."""

    def __init__(self) -> None:
        self.findings: dict[Signature, Finding] = {}
        self.reached: Counter[str] = Counter()
        self.lock = threading.Lock()
        # The baseline's judgement, known from the start, so what depends on an accepted deviation still runs.
        self.excuser: Callable[[Finding], str | None] = lambda finding: None

    def record(self, judged: FindingFacts, promise: str, test: str) -> Finding:
        """Add one observation of a deviation (grouped with its repeats)."""
        signature = Signature(promise, judged.check, judged.status, judged.code, message_shape(judged.received))
        with self.lock:
            finding = self.findings.get(signature)
            if finding is None:
                finding = self.findings[signature] = Finding(signature, judged.title, judged.expected, judged.received, judged.exchange)
                finding.excused_by = self.excuser(finding)
            else:
                finding.count += 1
            if test not in finding.tests:
                finding.tests.append(test)
            return finding

    def reach(self, promise: str) -> None:
        """A check of this promise ran to the end and found nothing."""
        with self.lock:
            self.reached[promise] += 1

    def deviates(self, promise: str) -> bool:
        """Whether the promise has a finding the baseline does not excuse."""
        with self.lock:
            return any(f.signature.promise == promise and f.excused_by is None for f in self.findings.values())

    def of(self, promise: str) -> list[Finding]:
        """The findings charged to one promise, most frequent first."""
        return sorted((f for f in self.findings.values() if f.signature.promise == promise), key=lambda f: -f.count)

    def merge(self, findings: list[dict[str, Any]], reached: dict[str, int]) -> None:
        """Add what another process recorded (pytest-xdist workers)."""
        with self.lock:
            for raw in findings:
                other = Finding.from_dict(raw)
                mine = self.findings.get(other.signature)
                if mine is None:
                    self.findings[other.signature] = other
                else:
                    mine.count += other.count
                    mine.tests += [test for test in other.tests if test not in mine.tests]
            self.reached.update(reached)


@dataclass
class TestScope:
    """The test now running: its name, the promises it exists for, and which promises its checks reached."""

    __test__ = False  # not a test class, despite the name

    name: str
    promises: tuple[str, ...]
    log: FindingLog
    reached: set[str] = field(default_factory=set)
    recorded: list[Finding] = field(default_factory=list)


# An answer schemathesis' checks passed: status, Content-Type, body, and the names of the checks run.
Answer = tuple[int, str | None, bytes, tuple[str, ...]]


@dataclass
class RunContext:
    """The state of one run that its checks read and write, in one typed object: passed to a check (`run=`), or the active run.

    The plugin makes one per pytest run (in the stash, gate.keys.RUN_KEY) and activates it until the run's config ends; replay
    makes one per exchange and passes it. Nothing here outlives the run that made it.
    """

    # The running test's scope, shared by every thread it starts (bursts judge from worker threads too, so not a ContextVar).
    scope: TestScope | None = None
    # Where a deviation seen between tests goes (a session fixture's request): the run's log, set while the suite's session lives.
    between_tests: FindingLog | None = None
    # Authorization values that get past the rate limiter (the fixtures' valid and scope-less tokens); empty: judge every response as if.
    authenticated: frozenset[str] = frozenset()
    # The answers schemathesis' checks passed in this run: a run gets the same few error bodies thousands of times, each validated once.
    conforming: set[Answer] = field(default_factory=set)
    # The run's secrets (the target fixtures'), redacted from everything written while the run is active.
    secrets: frozenset[str] = frozenset()


class ActiveRun:
    """The run checks not given a context speak for: one place, set by `activate`, put back by what it returns (None: no run)."""

    def __init__(self) -> None:
        self.run: RunContext | None = None


ACTIVE = ActiveRun()


def current_run() -> RunContext:
    """The active run; when none is, a new idle one each time (a check called on its own judges and raises, remembering nothing)."""
    return ACTIVE.run if ACTIVE.run is not None else RunContext()


def activate(run: RunContext) -> Callable[[], None]:
    """Make `run` the active run and add its secrets to the redaction; returns what puts back the run and the secrets before it."""
    before, secrets_before = ACTIVE.run, REDACT.snapshot()
    ACTIVE.run = run
    if run.secrets:
        REDACT.add(run.secrets)

    def put_back() -> None:
        ACTIVE.run = before
        if REDACT.snapshot() != secrets_before:  # the run's secrets, and any added while it was active (the environment's)
            REDACT.restore(secrets_before)

    return put_back


@contextmanager
def running(run: RunContext) -> Iterator[RunContext]:
    """`run` as the active run for the block."""
    put_back = activate(run)
    try:
        yield run
    finally:
        put_back()


BETWEEN_TESTS = "(between tests)"


def charged_to(named: str | None, declared: tuple[str, ...]) -> str | None:
    """The promise a failure is a finding of, decided here only: the one it names where it is raised, else the first its test exists for."""
    return named or (declared[0] if declared else None)


def report(failure: Deviation, run: RunContext | None = None) -> None:
    """Record a deviation in the run (the active one unless given); raise it when it speaks for one of the running test's promises,
    else let the test go on.

    Seen between tests (in a session fixture), a deviation with a promise is recorded under it and fails no test.
    """
    run = run or current_run()
    scope = run.scope
    if scope is None:
        if run.between_tests is None or failure.promise is None:
            raise failure
        run.between_tests.record(failure, failure.promise, BETWEEN_TESTS)
        failure.recorded = True
        return
    promise = charged_to(failure.promise, scope.promises)
    if promise is None:
        raise failure
    charged = failure if failure.promise == promise else failure.replaced(promise=promise)
    scope.recorded.append(scope.log.record(charged, promise, scope.name))
    charged.recorded = True
    if charged is failure and promise in scope.promises:
        raise failure
    if promise in scope.promises:
        # The copy that names the promise it is charged to; the caller's failure is the same deviation, not a second one.
        raise charged from None


def reach(promise: str, run: RunContext | None = None) -> None:
    """Note that a check of this promise ran to the end for the running test and found nothing."""
    scope = (run or current_run()).scope
    if scope is not None:
        scope.log.reach(promise)
        scope.reached.add(promise)




def require(*promises: str, run: RunContext | None = None) -> None:
    """Stop the running test as not reached when a promise it builds on already deviates: its findings say what broke."""
    scope = (run or current_run()).scope
    if scope is None:
        return
    broken = [promise for promise in promises if promise not in scope.promises and scope.log.deviates(promise)]
    if broken:
        raise NotReached(f"builds on {', '.join(broken)}, which already deviates in this run (see its findings)")


def charge_elsewhere(failure: Deviation, run: RunContext | None = None) -> NoReturn:
    """Report a failure that speaks for another promise; if the running test does not exist for it, stop the test as not reached."""
    report(failure, run)
    raise NotReached(f"{failure.headline} (a finding of {failure.promise})")
