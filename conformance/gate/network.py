"""What the run does when the network, not the server, took an exchange: run its test again once, stop when the target is gone,
and tell a request the server dropped every time (a finding) from one the network lost (not judged)."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

import pytest
from _pytest.outcomes import Skipped  # pytest.skip.Exception, importable for subclassing

from conformance.contract.checks import sent_malformed_bytes
from conformance.contract.ids import MALFORMED_BYTES, NO_SERVER_ERRORS
from conformance.contract.outcomes import NotJudged
from conformance.gate.keys import SESSION_KEY, STOPPED_KEY
from conformance.setup.command import USAGE
from conformance.wire.exchange import describe_unanswered
from conformance.wire.transport import AnswerLost, ConnectionDropped, TargetGone


class Stopped(Skipped):
    """The target stopped answering: raised inside a generated test, hypothesis lets it through at once (it replays failures)."""


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it groups (hypothesis reports several distinct failures as one group)."""
    yield error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from causes(inner)


def gone_in(error: BaseException) -> str | None:
    """Why the target is gone, when the error (or one it groups) says it is."""
    return next((str(cause) for cause in causes(error) if isinstance(cause, TargetGone | Stopped)), None)


def stop_run(session: pytest.Session, why: str) -> NoReturn:
    """End the run now with exit 4; cleanup still runs (at once, the target gone) and names the put-back commands."""
    session.config.stash[STOPPED_KEY] = why
    # An xdist worker's controller stops handing out tests on it (and the controller's exit status becomes 4 too).
    session.shouldstop = why
    pytest.exit(f"katapult-conformance: {why}; the run stops here (exit {USAGE})", returncode=USAGE)


def rerun_once(item: pytest.Item) -> None:
    """A test whose exchange the network took runs again once, from the IPs put back; lost again, it is `not judged (network)`."""
    session = item.config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.ledger.restore()
    try:
        item.runtest()
    except AnswerLost as again:
        raise NotJudged(f"{again}; its test was run twice and lost an answer both times") from None


@dataclass(frozen=True)
class Unanswered:
    """A finding's facts for a request the server (or a proxy in between) closed the connection on, on every attempt."""

    title: str
    check: str
    expected: str
    received: str
    exchange: str
    promise: str | None
    status: int | None = None
    code: str | None = None


def unanswered(error: ConnectionDropped, declared: tuple[str, ...]) -> Unanswered:
    """The request's finding, under the promise it was judging: malformed bytes under their own promise, a request any answer to
    which the test judges for crashes under `no server errors`, else the test's own first promise."""
    if sent_malformed_bytes(error.request) and MALFORMED_BYTES in declared:
        promise: str | None = MALFORMED_BYTES
    elif NO_SERVER_ERRORS in declared:
        promise = NO_SERVER_ERRORS
    else:
        promise = None
    return Unanswered(f"No answer: {error.said}", "an answer at all", "an answer (any documented status)", f"no answer: {error.said}",
                      describe_unanswered(error.request, error.said), promise)
