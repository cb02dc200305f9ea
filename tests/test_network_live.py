"""Issue #25 in real time: default live runs behind the project's fault injector, in a shared rate window, against a target
that dies, and against real front ends. Minutes each, so they are marked `nightly` (`pytest -m nightly`); the cheap
versions are in tests/test_network.py, tests/test_network_runs.py and tests/test_shared_token.py."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from helpers import MOCK_TARGET_YAML, RunPytest, ServedMock, child_env
from test_live import holders

from conformance.setup.fixtures import TargetFixtures
from conformance.wire.paths import READ_IP_PATH

TOKEN_200 = ("--permitted", "200", "--latency", "30-80")
INJECTOR = ("--drop-before", "0.01", "--drop-after", "0.01")
# Issue #18's bound for a default live run with a 200-a-minute token, the preflight's requests apart.
TOKEN_200_REQUESTS = 350
DEAD_TARGET_SECONDS = 60.0


def default_run(run_pytest: RunPytest, url: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                timeout: float = 600.0) -> tuple[subprocess.CompletedProcess[str], dict[str, object], str]:
    """A default live run with both reports: the process, the JSON report and the Markdown one."""
    markdown, report = tmp_path / "report.md", tmp_path / "report.json"
    done = run_pytest("--pyargs", "conformance", "-q", "--target-url", url, "--target-fixtures", MOCK_TARGET_YAML,
                      "--conformance-report", markdown, "--conformance-report", report, *args, env=env, timeout=timeout)
    summary = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    return done, summary, markdown.read_text(encoding="utf-8") if markdown.exists() else ""


@pytest.mark.nightly
@pytest.mark.parametrize("seed", ["1", "2", "3"])
def test_a_default_live_run_behind_the_injector_passes_and_reports_the_retries(
        seed: str, serve_mock: Callable[..., ServedMock], run_pytest: RunPytest, mock_target_fixtures: TargetFixtures, tmp_path: Path) -> None:
    """200 a minute, 30-80 ms, 1% of requests dropped before the mock and 1% of answers after it acted: exit 0, the target left
    as found, and the terminal, Markdown and JSON say how many requests were retried."""
    served = serve_mock(*TOKEN_200, *INJECTOR, "--seed", seed)
    before = holders(served.base_url, mock_target_fixtures)
    done, summary, markdown = default_run(run_pytest, served.base_url, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    network = summary["network"]
    assert isinstance(network, dict) and network["retried"] > 0, network
    assert f"network: {network['line']}" in done.stdout and f"Network: {network['line']}" in markdown
    assert holders(served.base_url, mock_target_fixtures) == before
    print(f"seed {seed}: {summary['requests']}; network: {network['line']}")


@pytest.mark.nightly
@pytest.mark.parametrize(("mutant", "promise", "named"), [
    ("not-found-allocates-a-free-ip", "no side effects", "ip_mockFree"),
    ("drops-connection-on-long-id", "404 ip_address_not_found", "closed the connection, 4 times"),
    ("invalid-json-body-500", "no server errors", "500"),
])
def test_mutants_are_still_caught_behind_the_injector(mutant: str, promise: str, named: str, serve_mock: Callable[..., ServedMock],
                                                      run_pytest: RunPytest, tmp_path: Path) -> None:
    """Retries never hide an answer: a mock that moves IPs fails and names the IP, one that closes the connection on one kind
    of request fails the promise that request judges, one whose allocate_ip answers 500 to some requests fails no server errors."""
    served = serve_mock(*TOKEN_200, *INJECTOR, "--seed", "7", "--mutant", mutant)
    done, summary, _ = default_run(run_pytest, served.base_url, tmp_path)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    verdicts = {entry["id"]: entry["verdict"] for entry in summary["promises"]}  # type: ignore[attr-defined]
    assert verdicts[promise] == "fails", verdicts
    assert any(named in json.dumps(finding) for finding in summary["findings"] if finding["promise"] == promise)  # type: ignore[attr-defined]


def spend(base_url: str, fixtures: TargetFixtures, count: int) -> None:
    """Another client of credentials.valid sends `count` requests."""
    with httpx.Client(timeout=10.0) as client:
        for _ in range(count):
            client.get(base_url + READ_IP_PATH, params={"ip_address[id]": fixtures.allocatable[0].id}, headers=fixtures.credential("valid").headers)


@pytest.mark.nightly
def test_a_default_live_run_started_50_s_into_a_window_another_client_spent(
        serve_mock: Callable[..., ServedMock], run_pytest: RunPytest, tmp_path: Path) -> None:
    """Another client spends 170 of the 200 just before the first test, which starts 50 s into that window: at most 350
    requests, one 429 burst, exit 0 (tests/spend_window.py)."""
    served = serve_mock(*TOKEN_200)
    done, summary, _ = default_run(run_pytest, served.base_url, tmp_path, "-p", "spend_window",
                                   env={"KATAPULT_TEST_SPEND_WINDOW": "170,50", "PYTHONPATH": str(Path(__file__).parent)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    requests = summary["requests"]
    assert isinstance(requests, dict)
    assert requests["sent"] <= TOKEN_200_REQUESTS and requests["by_status"].get("429", 0) <= 2, requests
    print(f"started 50 s into a spent window: {requests}; shared token: {summary['shared_token']}")


@pytest.mark.nightly
def test_with_the_window_spent_before_it_starts_doctor_waits_and_a_held_ip_is_still_exit_6(
        serve_mock: Callable[..., ServedMock], mock_target_fixtures: TargetFixtures, pycache_dir: Path) -> None:
    """All 200 spent by another client: doctor says it waits for the next window, then checks (never `setup ok` from a 429);
    with an allocatable IP held by another virtual machine it is exit 6 all the same."""
    served = serve_mock(*TOKEN_200)
    fixtures = mock_target_fixtures
    body = {"virtual_machine_network_interface": {"id": fixtures.other_network_interface_id}, "ip_address": {"id": fixtures.allocatable[0].id}}
    for held in (False, True):
        if held:
            httpx.post(served.base_url + "/virtual_machine_network_interfaces/_/allocate_ip", json=body,
                       headers=fixtures.credential("valid").headers, timeout=10.0)
        spend(served.base_url, fixtures, 200)
        doctor = subprocess.run([sys.executable, "-m", "conformance.tools.doctor", "--target-url", served.base_url,
                                 "--target-fixtures", str(MOCK_TARGET_YAML)], capture_output=True, text=True, timeout=300,
                                env=child_env(pycache_dir), check=False)
        assert "the token's rate-limit window is spent" in doctor.stdout, doctor.stdout + doctor.stderr
        assert doctor.returncode == (6 if held else 0), doctor.stdout + doctor.stderr


@pytest.mark.nightly
def test_a_target_that_dies_mid_run_ends_it_within_a_minute_with_exit_4(
        serve_mock: Callable[..., ServedMock], pycache_dir: Path, tmp_path: Path) -> None:
    """The served mock killed 20 s into a default live run: the run ends within a minute with exit 4, saying the target stopped
    answering, and names the put-back command of any IP it left moved."""
    served = serve_mock(*TOKEN_200)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "conformance", "-q", "--target-url", served.base_url,
               "--target-fixtures", str(MOCK_TARGET_YAML)]
    run = subprocess.Popen(command, cwd=tmp_path, env=child_env(pycache_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(20)
    served.process.kill()
    killed = time.monotonic()
    output, _ = run.communicate(timeout=300)
    took = time.monotonic() - killed
    assert run.returncode == 4, output[-3000:]
    assert "stopped answering in the middle of the run" in output and took < DEAD_TARGET_SECONDS, (took, output[-3000:])
    print(f"ended {took:.0f} s after the target died")


@pytest.mark.nightly
@pytest.mark.parametrize("front", ["--connection-close", "--gzip", "--chunked", "--charset"])
def test_a_default_live_run_against_a_real_front_end_passes(front: str, serve_mock: Callable[..., ServedMock], run_pytest: RunPytest,
                                                           tmp_path: Path) -> None:
    """Each front end alone (correct HTTP): a default live run passes."""
    served = serve_mock(front)
    done, _, _ = default_run(run_pytest, served.base_url, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
