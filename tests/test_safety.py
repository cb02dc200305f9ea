"""Safety: production is refused unless asked for, and an interrupted run still gives back what it allocated."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from helpers import MOCK_TARGET_YAML, SPEND_WINDOW_ON_FIRST_ALLOCATION, RunSuite, ServedMock, child_env

from conformance.setup.fixtures import IPRef, TargetFixtures
from conformance.setup.settings import ConfigError, build_config

PRODUCTION = "https://api.katapult.io/core/v1"
ALLOCATION_WAIT = 120.0
# Test-only plugin: after each allocation, drop a flag file and sleep, so the parent can interrupt mid-test.
SLOW_ALLOCATION_PLUGIN = '''
import os
import pathlib
import signal
import time

from conformance.wire import api

# Started as a background job of a non-interactive shell (`bash .ci/run &`), the project's tests and so this child inherit
# SIGINT ignored (POSIX), and the run slept through the test's Ctrl-C until it timed out. A terminal's Ctrl-C reaches a
# run with Python's own handler: so does this one, however the project's tests were started.
signal.signal(signal.SIGINT, signal.default_int_handler)

allocate = api.allocate


def slow_allocate(*args, **kwargs):
    response = allocate(*args, **kwargs)
    pathlib.Path(os.environ["ALLOCATED_FLAG"]).write_text(str(response.status_code))
    time.sleep(600)
    return response


api.allocate = slow_allocate
'''


@pytest.mark.parametrize("how", ["flag", "env"])
def test_production_is_refused_in_one_line(run_suite: RunSuite, how: str) -> None:
    """A production URL (flag or env) stops the run before any request: exit 4, one line, no traceback."""
    args = ["--target-url", PRODUCTION] if how == "flag" else []
    env = {"KATAPULT_TARGET_URL": PRODUCTION} if how == "env" else {}
    done = run_suite("--pyargs", "conformance", "--target-fixtures", MOCK_TARGET_YAML, *args, env=env)
    assert done.ret == 4
    lines = [line for line in done.outlines + done.errlines if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR: katapult-conformance: refusing to run against Katapult's production API (api.katapult.io)")
    assert "--allow-production" in lines[0]


def test_allow_production_lets_the_settings_through() -> None:
    """With --allow-production the same settings are accepted (nothing is sent here)."""
    with pytest.raises(ConfigError, match="refusing"):
        build_config({"target_url": PRODUCTION, "target_fixtures": str(MOCK_TARGET_YAML)}, environ={})
    config = build_config({"target_url": PRODUCTION, "target_fixtures": str(MOCK_TARGET_YAML), "allow_production": True}, environ={})
    assert config.target_url == PRODUCTION


def holder(served: ServedMock, fixtures: TargetFixtures, ip: IPRef) -> str | None:
    """Which virtual machine holds the IP on the served mock, read with the fixtures' valid token."""
    response = httpx.get(f"{served.base_url}/ip_addresses/ip_address", params={"ip_address[id]": ip.id},
                         headers=dict(fixtures.credential("valid").headers), timeout=10)
    response.raise_for_status()
    allocation = response.json()["allocation"]
    return allocation["value"]["id"] if allocation else None


def interrupted_mid_allocation(command: list[str], stop: signal.Signals, served: ServedMock, fixtures: TargetFixtures, tmp_path: Path,
                               pycache_dir: Path) -> tuple[int, str]:
    """Run `command` (one allocation test, slowed by SLOW_ALLOCATION_PLUGIN) until it has allocated, send `stop`; its exit code and output.

    Before the signal, the IP is held by the interface's virtual machine: what the run must give back.
    """
    (tmp_path / "slow_allocation.py").write_text(SLOW_ALLOCATION_PLUGIN, encoding="utf-8")
    flag = tmp_path / "allocated"
    env = child_env(pycache_dir, {"PYTHONPATH": str(tmp_path), "ALLOCATED_FLAG": str(flag)})
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + ALLOCATION_WAIT
        while not flag.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert flag.exists(), f"no allocation happened: {process.communicate(timeout=30)[0] if process.poll() is not None else 'timed out'}"
        assert flag.read_text() == "200"
        assert holder(served, fixtures, fixtures.allocatable_ip(0)) == "vm_mockAlpha00000001"
        process.send_signal(stop)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, output


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_gives_back_its_allocation(
    stop: signal.Signals, served_mock: ServedMock, mock_target_fixtures: TargetFixtures, tmp_path: Path, pycache_dir: Path
) -> None:
    """Ctrl-C (or a CI runner's SIGTERM) in the middle of a test that has allocated: the run ends interrupted, the IP is free."""
    # Only the scenarios' module: the one test selected is there, and the rest of the suite need not be collected.
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "slow_allocation", "--pyargs", "conformance.test_scenarios",
               "-k", "test_allocate_free_ip and not address", "--target-url", served_mock.base_url,
               "--target-fixtures", str(MOCK_TARGET_YAML), "--max-rate", "1000"]
    code, output = interrupted_mid_allocation(command, stop, served_mock, mock_target_fixtures, tmp_path, pycache_dir)
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    assert holder(served_mock, mock_target_fixtures, mock_target_fixtures.allocatable_ip(0)) is None, output


# A CI runner cancels the job (SIGTERM) while the pacer waits for the end of a rate window the run spent, right after a test
# allocated an IP: the served mock's window is spent to its last request as the 429 burst spends it, then a paced request.
CANCELLED_IN_A_WINDOW_WAIT = """
import os
import signal

from conformance.wire import api, transport
from conformance.wire.paths import READ_IP_PATH

state = {"spent": False, "cancelled": False}
real_allocate = api.allocate
clock_sleep, clock_now = transport.LIVE_CLOCK


""" + SPEND_WINDOW_ON_FIRST_ALLOCATION + """

def sleep(seconds):
    if state["spent"] and not state["cancelled"] and seconds >= 1:
        state["cancelled"] = True
        os.kill(os.getpid(), signal.SIGTERM)
    clock_sleep(seconds)


api.allocate = allocate
transport.LIVE_CLOCK = (sleep, clock_now)
"""
# The served mock's window, and the clock the run paces by: its 60 s window is the mock's 20 s, so the wait owed is seconds long.
WINDOW_SECONDS, CLOCK_SCALE = 20, 3


def test_a_cancelled_job_prints_the_put_back_commands_before_it_waits_and_a_second_signal_ends_the_wait(
    serve_mock: Callable[..., ServedMock], tmp_path: Path, pycache_dir: Path
) -> None:
    """SIGTERM during a rate-window wait: no finding is invented, and before cleanup waits for that window to end it prints the
    command that puts the held IP back (a CI runner's SIGKILL may come during the wait). The next signal ends the wait at once:
    the run exits 2 within seconds, no traceback, naming the IP it did not put back with the same command."""
    served = serve_mock("--permitted", "100", "--window-seconds", str(WINDOW_SECONDS))
    (tmp_path / "cancelled_in_a_window_wait.py").write_text(CANCELLED_IN_A_WINDOW_WAIT, encoding="utf-8")
    env = child_env(pycache_dir, {"PYTHONPATH": str(tmp_path), "KATAPULT_CLOCK_SCALE": str(CLOCK_SCALE)})
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conformance.tools.scaled_clock", "-p", "cancelled_in_a_window_wait",
               "--pyargs", "conformance.test_scenarios", "-k", "test_allocate_free_ip and id", "--target-url", served.base_url,
               "--target-fixtures", str(MOCK_TARGET_YAML), "--conformance-report", str(tmp_path / "report.json")]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    before: list[str] = []
    try:
        for line in process.stdout:
            before.append(line)
            if "ip_mockFree000000001" in line and "curl" in line:
                break
        assert process.poll() is None, "".join(before)
        announced = [line for line in before if line.startswith("katapult-conformance: ")]
        assert announced and "cleanup waits" in announced[-1], "".join(before)
        process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        rest, _ = process.communicate(timeout=60)
        waited = time.monotonic() - stopped
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    output = "".join(before) + rest
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output[-3000:]
    # What the wait had left was many seconds: the signal ended it, and the run only wrote its reports after.
    assert waited < WINDOW_SECONDS / 2, output[-3000:]
    assert "Traceback" not in output and "X-RateLimit-Remaining is still" not in output, output[-3000:]
    fix = next(line for line in before if "ip_mockFree000000001" in line).split(": ", 1)[1].strip()
    assert f"ip_mockFree000000001 (185.199.221.10): was free, now unknown (interrupted again before it was put back); to restore it run: {fix}" \
        in rest, output[-3000:]
    assert ", 1 interrupted in " in output.strip().splitlines()[-1]
