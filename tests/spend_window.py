"""A pytest plugin for the project's tests (`-p spend_window`): another client of credentials.valid spends its rate-limit window
just before the run's first test sends anything, and the test starts OFFSET seconds into that window (on the run's clock,
scaled or not).

KATAPULT_TEST_SPEND_WINDOW="SPENT,OFFSET": the requests the other client sends (GET ip_address, each counted in the token's
window), and how far into the window (in the suite's seconds) the tests start.
"""
from __future__ import annotations

import os

import httpx
import pytest

from conformance.gate.keys import CONFIG_KEY, FIXTURES_KEY
from conformance.wire import transport
from conformance.wire.paths import READ_IP_PATH

SPENT = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Before the first test's own requests (its fixtures, the suite's session among them, are set up): spend the window, then
    wait until OFFSET seconds into it."""
    config = item.config
    if config.stash.get(SPENT, False):
        return
    config.stash[SPENT] = True
    spent, offset = (float(part) for part in os.environ["KATAPULT_TEST_SPEND_WINDOW"].split(","))
    suite, fixtures = config.stash[CONFIG_KEY], config.stash[FIXTURES_KEY]
    sleep, now = transport.LIVE_CLOCK
    started = now()
    with httpx.Client(timeout=10.0) as client:
        for _ in range(int(spent)):
            client.get(str(suite.target_url) + READ_IP_PATH, params={"ip_address[id]": fixtures.allocatable[0].id},
                       headers=fixtures.credential("valid").headers)
    sleep(max(0.0, offset - (now() - started)))
