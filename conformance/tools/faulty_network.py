"""A pytest plugin putting the project's fault injector in front of the embedded mock (`-p conformance.tools.faulty_network`).

KATAPULT_MOCK_FAULTS says what the network does, e.g. `drop-before=0.01,drop-after=0.01,seed=3`: a share of requests
dropped before the mock acts on them, a share of answers dropped after it acted (both a connection closed without a
response), a share answered with a gateway's 502 page (`gateway=`), drawn from one seeded stream. For the project's tests
of a flaky network; the served mock takes the same as options (`katapult-conformance mock --drop-before 0.01 ...`).
"""
from __future__ import annotations

import os

import pytest

from conformance.mock import inprocess
from conformance.mock.faults import Faults

VARIABLE = "KATAPULT_MOCK_FAULTS"


def pytest_configure(config: pytest.Config) -> None:
    """Set the embedded mock's network for this run; put it back when the run ends."""
    try:
        faults = Faults.parse(os.environ.get(VARIABLE, ""))
    except ValueError as error:
        raise pytest.UsageError(f"katapult-conformance: {VARIABLE}: {error}") from None
    before = inprocess.FAULTS
    inprocess.FAULTS = faults

    def restore() -> None:
        inprocess.FAULTS = before

    config.add_cleanup(restore)
