"""A shared token is expected (issue #25): the preflight never says `setup ok` from refused reads, waits for a spent window
once and says so, and a wrong fixture is still exit 6 whatever the window. In process, on the mock's virtual clock."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import RunPytest, ServedMock

from conformance.gate.preflight import NotChecked, preflight
from conformance.mock.app import ReferenceMock, VirtualClock
from conformance.mock.inprocess import mock_target
from conformance.mock.world import load_world
from conformance.setup.fixtures import TargetFixtures
from conformance.wire.paths import READ_IP_PATH
from conformance.wire.transport import Target

PERMITTED = 30


@pytest.fixture
def shared() -> tuple[ReferenceMock, Target]:
    """The mock with a small allowance (30 a window), and a target on it (the preflight's)."""
    clock = VirtualClock()
    world = load_world()
    world.permitted = PERMITTED
    mock = ReferenceMock(world, clock=clock)
    return mock, mock_target(mock, clock)


def spend(target: Target, fixtures: TargetFixtures) -> None:
    """Another client of credentials.valid (on a target of its own) spends what the token's window has left."""
    assert target.mock is not None
    other = mock_target(target.mock, target.pacer.now)  # type: ignore[arg-type]
    for _ in range(PERMITTED + 1):
        other.send("GET", READ_IP_PATH, credential=fixtures.credential("valid"), params={"ip_address[id]": "ip_other"}, paced=False)


def test_a_spent_window_is_waited_out_once_said_and_the_setup_then_checked(shared: tuple[ReferenceMock, Target],
                                                                          mock_target_fixtures: TargetFixtures) -> None:
    """The first read gets 429: the preflight says it waits for the next window, waits (within one window), and checks it all."""
    _, target = shared
    spend(target, mock_target_fixtures)
    said: list[str] = []
    started = target.pacer.now()
    found = preflight(target, mock_target_fixtures, said.append)
    assert found.ok and len(found.holders) == len(mock_target_fixtures.known_ips())
    assert len(said) == 1 and "429 rate_limit_reached" in said[0] and "waiting 61 s for the next one" in said[0]
    assert 60 <= target.pacer.now() - started <= 62 and found.requests <= 20


def test_a_window_others_keep_spending_is_not_checked(shared: tuple[ReferenceMock, Target], mock_target_fixtures: TargetFixtures) -> None:
    """Still 429 after the one wait: NotChecked (exit 4) saying why, never `setup ok`."""
    _, target = shared
    spend(target, mock_target_fixtures)
    sleep = target.pacer.sleep

    def others_spend_it_again(seconds: float) -> None:
        sleep(seconds)
        spend(target, mock_target_fixtures)

    target.pacer.sleep = others_spend_it_again
    with pytest.raises(NotChecked, match="still answered 429 rate_limit_reached after waiting for the token's next rate-limit window"):
        preflight(target, mock_target_fixtures)


def test_maintenance_is_not_checked(shared: tuple[ReferenceMock, Target], mock_target_fixtures: TargetFixtures) -> None:
    """503 service_unavailable: the target could not be asked, exit 4, saying maintenance."""
    mock, target = shared
    mock.maintenance = True
    with pytest.raises(NotChecked, match="503 service_unavailable, the target is in maintenance"):
        preflight(target, mock_target_fixtures)


def test_a_held_fixture_ip_is_a_setup_problem_whatever_the_window(shared: tuple[ReferenceMock, Target],
                                                                   mock_target_fixtures: TargetFixtures) -> None:
    """An allocatable IP held by another virtual machine, read once the window turned over: a problem (exit 6), not a skip."""
    mock, target = shared
    ip = mock_target_fixtures.allocatable[0]
    mock.world.ips[ip.id].allocated_to = mock_target_fixtures.other_network_interface_id
    spend(target, mock_target_fixtures)
    found = preflight(target, mock_target_fixtures)
    assert not found.ok and any(ip.id in problem and "is held by" in problem for problem in found.problems)


def test_no_burst_in_a_window_another_client_began() -> None:
    """A window first seen already low was begun by another client: its end is unknown, so the pacer waits it out (whole, saying
    why on the status line and in the report) without the 429 burst, and bursts in the next window, whose start it saw."""
    from test_pacing import FakeClock
    from test_wire import limited

    from conformance.wire.transport import Pacer

    clock = FakeClock()
    pacer = Pacer(0.0, clock.sleep, clock)
    why: list[str | None] = []

    def sleep(seconds: float) -> None:
        why.append(pacer.waiting_for)
        clock.sleep(seconds)

    pacer.sleep = sleep
    bursts: list[float] = []
    pacer.on_window_spent = lambda response: bursts.append(clock.now)
    pacer.after_response(limited("200", "40"))
    assert bursts == [] and clock.slept == [60.0] and why == ["a window another client of the token spent"]
    assert len(pacer.shared) == 1 and "spent by another client (X-RateLimit-Remaining 40 of 200)" in pacer.shared[0]
    pacer.after_response(limited("200", "199"))
    pacer.after_response(limited("200", "40"))
    assert bursts == [60.0] and why[1] is None and len(pacer.shared) == 1


def test_a_remaining_that_does_not_recover_is_a_shared_token_not_a_finding() -> None:
    """Still at the reserve after a whole window: noted as a shared token, and pacing goes on by Permitted alone (the run's
    rate-limit headers promise is judged by what the headers say of themselves, not by this)."""
    from test_pacing import FakeClock
    from test_wire import limited

    from conformance.wire.transport import Pacer

    clock = FakeClock()
    pacer = Pacer(0.0, clock.sleep, clock)
    stalls: list[str] = []
    pacer.on_stall = lambda message, response: stalls.append(message)
    pacer.after_response(limited("200", "3"))
    pacer.after_response(limited("200", "3"))
    assert clock.slept == [60.0] and len(stalls) == 1 and not pacer.trust_remaining
    assert stalls[0].startswith("X-RateLimit-Remaining does not recover: still 3 after waiting") and "another client" in stalls[0]
    assert pacer.shared[-1] == stalls[0] and pacer.min_interval == 60 / 160


SCALED = ("-p", "conformance.tools.scaled_clock", "-p", "spend_window")
# Issue #25: a default live run started in a window another client spent sends at most this many (a fresh one sends ~290).
SHARED_WINDOW_REQUESTS = 350


# A minute of loopback runs: nightly, beside its real-time version (CI's budget; the pacer's part of it is held by the unit tests
# above, the preflight's by the in-process ones).
@pytest.mark.nightly
def test_a_run_started_in_a_window_another_client_spent_waits_once_and_sends_what_a_fresh_one_does(
        serve_mock: Callable[..., ServedMock], run_pytest: RunPytest, mock_target_fixtures: TargetFixtures, tmp_path: Path) -> None:
    """200 a minute, the window 10 s and the suite's clock 6x (so its 60 s): another client spends 170 of the window just before
    the first test sends anything, which starts 30 s into it. The run waits for the next window once (no burst in that one: its
    end is not known), says so, sends at most 350 requests with one 429 burst, and passes. (Started 50 s in, in real time:
    tests/test_network_live.py, nightly.)"""
    served = serve_mock("--permitted", "200", "--window-seconds", "10")
    report = tmp_path / "report.json"
    done = run_pytest("--pyargs", "conformance", "-q", *SCALED, "--target-url", served.base_url, "--target-fixtures", mock_target_fixtures.source,
                      "--conformance-report", report, env={"KATAPULT_TEST_SPEND_WINDOW": "170,30", "PYTHONPATH": str(Path(__file__).parent)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    summary = json.loads(report.read_text(encoding="utf-8"))
    requests = summary["requests"]
    assert requests["sent"] <= SHARED_WINDOW_REQUESTS and requests["by_status"].get("429", 0) <= 2 and requests["throttled"] == 0, requests
    assert any("spent by another client" in note for note in summary["shared_token"]), summary["shared_token"]
    assert "shared token: the token's rate-limit window was spent by another client" in done.stdout


def test_no_burst_at_the_very_end_of_a_window() -> None:
    """Spent to the floor with under 5 s of its window left, the burst would run on into the next window: the pacer waits and
    bursts in a later window instead."""
    from test_pacing import FakeClock
    from test_wire import limited

    from conformance.wire.transport import Pacer

    clock = FakeClock()
    pacer = Pacer(0.0, clock.sleep, clock)
    bursts: list[float] = []
    pacer.on_window_spent = lambda response: bursts.append(clock.now)
    pacer.after_response(limited("200", "199"))
    clock.now = 57.0
    pacer.after_response(limited("200", "40"))
    assert bursts == [] and clock.slept == [4.0]
    pacer.after_response(limited("200", "199"))
    clock.now += 20.0
    pacer.after_response(limited("200", "40"))
    assert bursts == [81.0]
