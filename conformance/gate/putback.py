"""What cleanup reports of an IP not back in its starting state: light enough for the reporting hooks to import at start-up."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from _pytest.outcomes import Failed  # pytest.fail's exception: a failure shown by its message alone (pytrace=False)

from conformance.setup.fixtures import IPRef

FREE = "free"


@dataclass(frozen=True)
class Drift:
    """An IP not back in its starting state, and what to run to put it back; or (`put_back`) one the target moved though no
    test left it changed, found at the end of the run and put back then."""

    ip: IPRef
    started: str | None
    now: str | None
    fix: str = ""
    put_back: bool = False

    def __str__(self) -> str:
        if self.put_back:
            return f"{self.ip.id} ({self.ip.address}): was {self.started or FREE}, found {self.now or FREE} though no test left it changed; put back"
        text = f"{self.ip.id} ({self.ip.address}): was {self.started or FREE}, now {self.now or FREE}"
        return text + (f"; to restore it run: {self.fix}" if self.fix else "")


NOT_BACK = "not back in its starting state"


class NotPutBack(Failed):
    """A test's cleanup could not put these IPs back: shown by its message alone, each IP with its starting holder and its command."""

    # Named without its module wherever pytest names it (JUnit's message, the short summary), as pytest's own Failed is.
    __module__ = "builtins"

    def __init__(self, drifts: Sequence[Drift]) -> None:
        self.drifts = tuple(drifts)
        super().__init__(f"{NOT_BACK}: " + "\n".join(str(drift) for drift in self.drifts), pytrace=False)


