"""How a test ended, why it did not judge its promises, and a promise's verdict: as types, never as words of a message to match.

A skip whose cause the suite knows raises a `CausedSkip` subclass where the cause is known (a missing fixture entry: not
provoked; the run's bounds: not run; an earlier deviation: not reached; the target fixtures' choice: opted out); the
reporter carries the cause to the verdict as data, the message stays for the reader. A new kind of cause is one member of
`Cause`, one subclass, and (when it is a verdict of its own) one member of `Verdict` and one row of `VERDICT_OF_CAUSE`.
"""
from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from _pytest.outcomes import Skipped  # pytest.skip.Exception, importable for subclassing and typing


class Outcome(StrEnum):
    """How one test ended (the words are the reports'): a baselined failure is a known deviation, not a failure."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    DEVIATION = "known deviation"


class Verdict(StrEnum):
    """A promise's verdict at the end of the run (the words are the reports' and users' scripts')."""

    CONFORMS = "conforms"
    FAILS = "fails"
    KNOWN_DEVIATION = "known deviation"
    NOT_PROVOKED = "not provoked"
    NOT_REACHED = "not reached"
    NOT_RUN = "not run"
    OPTED_OUT = "opted out"
    # Every test of the promise lost its one exchange to the network (an answer lost after the server may have acted), also
    # when run again: nothing was judged, and nothing is charged to the server.
    NOT_JUDGED_NETWORK = "not judged (network)"

    @property
    def judged(self) -> bool:
        """Whether the run judged the promise (conforms, fails or known deviation)."""
        return self in JUDGED


JUDGED = frozenset({Verdict.CONFORMS, Verdict.FAILS, Verdict.KNOWN_DEVIATION})


class Cause(StrEnum):
    """Why a skipped test did not judge what it exists for."""

    OPTED_OUT = "opted out"
    NOT_PROVOKED = "not provoked"
    NOT_RUN = "not run"
    NOT_REACHED = "not reached"
    NOT_JUDGED_NETWORK = "not judged (network)"


# The verdict of a promise every test of which was skipped for this cause (a promise whose tests stopped for different causes,
# or for none the suite knows, is not reached; but opted out beside not provoked is the target fixtures' both ways: not provoked).
VERDICT_OF_CAUSE: dict[Cause, Verdict] = {
    Cause.OPTED_OUT: Verdict.OPTED_OUT,
    Cause.NOT_PROVOKED: Verdict.NOT_PROVOKED,
    Cause.NOT_RUN: Verdict.NOT_RUN,
    Cause.NOT_REACHED: Verdict.NOT_REACHED,
    Cause.NOT_JUDGED_NETWORK: Verdict.NOT_JUDGED_NETWORK,
}
FIXTURES_CAUSES = frozenset({Cause.OPTED_OUT, Cause.NOT_PROVOKED})


def verdict_of_causes(causes: list[Cause | None]) -> Verdict:
    """The verdict of a promise none of whose tests judged it, from why each was skipped (None: not skipped, or for no known cause)."""
    known = {cause for cause in causes if cause is not None}
    if not causes or len(known) < len(set(causes)):
        return Verdict.NOT_REACHED
    if len(known) == 1:
        return VERDICT_OF_CAUSE[known.pop()]
    return Verdict.NOT_PROVOKED if known <= FIXTURES_CAUSES else Verdict.NOT_REACHED


class CausedSkip(Skipped):
    """A skip whose cause is data: the reporter reads `cause`, never the message."""

    cause: ClassVar[Cause]

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotProvoked(CausedSkip):
    """The target fixtures cannot provoke what the test exists for (an entry is missing or unusable, or the target cannot show it)."""

    cause = Cause.NOT_PROVOKED


class NotRun(CausedSkip):
    """The run's own bounds (--max-requests, --max-duration) stopped the test before it ran."""

    cause = Cause.NOT_RUN


class NotJudged(CausedSkip):
    """The network took the test's exchange (its answer lost after the server may have acted), also when the test ran again."""

    cause = Cause.NOT_JUDGED_NETWORK
