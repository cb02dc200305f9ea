"""Budget and time are bounded: running out skips tests naming the option, never blames the server, and cleanup still runs."""
from __future__ import annotations

import re
import time

import pytest
from helpers import MOCK_TARGET_YAML, RunSuite, ServedMock, run_output, unpadded

from conformance.mock.app import VirtualClock
from conformance.mock.inprocess import mock_target
from conformance.mock.mutants import mock_class
from conformance.mock.world import DEFAULT_WORLD, load_world
from conformance.setup.fixtures import load_target_fixtures
from conformance.wire import api
from conformance.wire.transport import BudgetExhausted

FIXTURES = load_target_fixtures(MOCK_TARGET_YAML, environ={})


def test_max_duration_ends_sending_and_names_the_option() -> None:
    """Past --max-duration a budgeted request is refused (the test is skipped as not run); cleanup requests still go out."""
    clock = VirtualClock()
    target = mock_target(mock_class(None)(load_world(DEFAULT_WORLD), clock=clock), clock)
    target.max_duration, target.deadline = 1.0, time.monotonic() - 1
    with pytest.raises(BudgetExhausted, match="--max-duration of 1 s is spent"):
        api.allocate(target, None, FIXTURES.network_interface_id, {"id": "ip_x"})
    assert api.unallocate(target, FIXTURES.credential("valid"), FIXTURES.allocatable_ip(0), budgeted=False).status_code == 422


@pytest.mark.parametrize(("option", "value"), [("--max-requests", "60"), ("--max-duration", "1")])
def test_running_out_skips_naming_the_option(option: str, value: str, served_mock: ServedMock, run_suite: RunSuite) -> None:
    """Out of budget or time, in setup, body or teardown: tests are skipped naming the option, nothing fails, cleanup passes."""
    started = time.monotonic()
    # In this process: the served mock is the process boundary; a broken bound makes the run longer, never endless.
    result = run_suite("--pyargs", "conformance", "-q", "-rs", "-k", "not rate_limit", "--target-url", served_mock.base_url,
                       "--target-fixtures", MOCK_TARGET_YAML, "--max-rate", "50", option, value)
    output = run_output(result)
    assert result.ret == 0, output[-3000:]
    assert not re.search(r"\d+ (failed|errors?)\b", output), output[-3000:]
    assert f"raise {option} to run more" in output
    assert "conforms cleanup" in unpadded(output)
    # What the bound stopped is `not run`, naming the option; never `not reached` or `fails` because of it.
    assert re.search(rf"^not run +[^:]+: .*raise {option} to run more", output, re.MULTILINE), output[-3000:]
    assert not re.search(rf"^not reached +[^:]+: .*raise {option}", output, re.MULTILINE), output[-3000:]
    assert time.monotonic() - started < 60
