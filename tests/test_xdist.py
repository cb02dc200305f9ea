"""The suite on xdist: `-n 2` gives the verdicts, counts, request log and clean target of a run without it; two runs on one target are refused."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from conformance.gate.runlock import LOCK_DIR_ENV, RunLock
from conformance.setup.fixtures import load_target_fixtures

if TYPE_CHECKING:
    from helpers import Completed, RunPytest, RunSuite, ServedMock

from helpers import MOCK_TARGET_YAML
from test_live import GENEROUS_LIMIT, holders
from test_record import assert_recorded, entries

# The rate-limit burst runs until the window is spent, so its length depends on what ran before it in that process.
NOT_RATE_LIMIT = ("-k", "not test_rate_limit_reached")
WITHOUT_XDIST = ("-p", "no:xdist")
# What is compared is which worker runs what and what each sends, not generation's breadth: a few examples a test (every test runs).
FEW_EXAMPLES = ("--conformance-max-examples", "5")
STATUS = re.compile(r" -> \d+$")
# Each request-log line starts with its UTC time and ends with the response's X-Request-Id: both differ between any two runs.
STAMPS = re.compile(r"^\S+Z | [0-9a-fA-F-]{32,36}$|(?<=-> \d{3}) \S+$")


def request_lines(text: str) -> list[str]:
    """A request log's lines without the time and request id, so two runs' logs compare."""
    # Split on newlines only: a generated body may hold U+2028 or U+0085, which splitlines() would also break at.
    return [STAMPS.sub("", line) for line in text.removesuffix("\n").split("\n")] if text else []


def received(served: ServedMock | None) -> list[dict[str, str]]:
    """Every API request the served mock received so far (GET /__mock__/received); none without a served mock."""
    if served is None:
        return []
    requests: list[dict[str, str]] = httpx.get(served.base_url.removesuffix("/core/v1") + "/__mock__/received", timeout=10).json()["requests"]
    return requests


def run_both(run_pytest: RunPytest, run_suite: RunSuite, tmp_path: Path, *args: str, served: ServedMock | None = None
             ) -> dict[str, tuple[Completed, dict[str, Any], list[str]]]:
    """The suite without xdist (in this process) and with `-n 2` (a child, its workers children of it), each recorded (--record
    NAME.har): each run's exit code and output, JSON report and request log lines; with a served mock, what it received during
    each run is in tmp_path/NAME.received.json."""
    runs = {}
    for name in ("n0", "n2"):
        report, log, har = tmp_path / f"{name}.json", tmp_path / f"{name}.log", tmp_path / f"{name}.har"
        before = len(received(served))
        given = ("--pyargs", "conformance", *NOT_RATE_LIMIT, *FEW_EXAMPLES, *args, "--conformance-report", report, "--request-log", log,
                 "--record", har)
        if name == "n0":
            result = run_suite(*WITHOUT_XDIST, *given)
            done: Completed = subprocess.CompletedProcess(given, int(result.ret), result.stdout.str(), result.stderr.str())
        else:
            done = run_pytest("-n", "2", *given)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        (tmp_path / f"{name}.received.json").write_text(json.dumps(received(served)[before:]), encoding="utf-8")
        runs[name] = (done, json.loads(report.read_text(encoding="utf-8")), request_lines(log.read_text(encoding="utf-8")))
    leftovers = [path.name for path in tmp_path.iterdir() if path.name.endswith(".part")]
    assert not leftovers, leftovers
    return runs


def verdicts(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each promise's verdict and detail."""
    return {promise["id"]: (promise["verdict"], promise["detail"]) for promise in report["promises"]}


def generated_lines(done: Completed) -> set[str]:
    """The "generated cases by status" section (in whatever order the tests finished)."""
    section = done.stdout.split("generated cases by status", 1)[1]
    return {line for line in section.splitlines()[1:] if line.startswith("test_")}


def assert_same_run(runs: dict[str, tuple[Completed, dict[str, Any], list[str]]]) -> None:
    """Same verdicts (cleanup included), same generated cases per status."""
    (n0, report0, _), (n2, report2, _) = runs["n0"], runs["n2"]
    assert "created: 2/2 workers" in n2.stdout and "created:" not in n0.stdout
    assert verdicts(report2) == verdicts(report0)
    assert verdicts(report2)["cleanup"][0] == "conforms" and verdicts(report2)["concurrency"][0] == "conforms"
    assert generated_lines(n2) == generated_lines(n0) and len(generated_lines(n0)) >= 8


def test_in_process_two_workers_give_the_verdicts_and_log_of_one(run_pytest: RunPytest, run_suite: RunSuite, tmp_path: Path) -> None:
    """In process each worker has its own mock: same verdicts and cases; one log with every request (plus each extra worker's own state reads)."""
    runs = run_both(run_pytest, run_suite, tmp_path)
    assert_same_run(runs)
    log0, log2 = runs["n0"][2], runs["n2"][2]
    changing = [line for line in log0 if not line.startswith("GET ")]
    assert sorted(STATUS.sub("", line) for line in log2 if not line.startswith("GET ")) == sorted(STATUS.sub("", line) for line in changing)
    extra_reads = Counter(log2) - Counter(log0)
    # An extra worker reads, for itself, each fixture IP's starting state and its end state, and each interface's virtual machine.
    bound = 2 * len(load_target_fixtures(MOCK_TARGET_YAML, environ={}).known_ips()) + 2
    assert all(line.startswith("GET ") for line in extra_reads) and sum(extra_reads.values()) <= bound, extra_reads
    # One record for both workers, each exchange marked with its worker (the controller's own, for the header, with none).
    assert {item.get("_worker") for item in entries(tmp_path / "n2.har")} == {"gw0", "gw1", None}


def test_live_two_workers_give_the_verdicts_counts_and_log_of_one(
    serve_mock: Callable[..., ServedMock], run_pytest: RunPytest, run_suite: RunSuite, mock_target_fixtures: Any, tmp_path: Path
) -> None:
    """Live, every test goes to one worker: same verdicts, the same requests per status, the same log, and the target left as found."""
    served = serve_mock(*GENEROUS_LIMIT)
    before = holders(served.base_url, mock_target_fixtures)
    # Outside the checkout, as a user runs it (a fixtures path inside it made pytest's rootdir the checkout, hiding unstable ids).
    fixtures = shutil.copy(mock_target_fixtures.source, tmp_path / "mock-target.yaml")
    runs = run_both(run_pytest, run_suite, tmp_path, "--target-url", served.base_url, "--target-fixtures", fixtures, "--max-rate", "2000",
                    served=served)
    assert_same_run(runs)
    (_, report0, log0), (n2, report2, log2) = runs["n0"], runs["n2"]
    # The tests' requests are the same; -n 2 adds the controller's read-back and counts it. One preflight either way (#25):
    # the workers take the controller's result.
    assert report2["requests"]["sent"] == report0["requests"]["sent"] == len(log0) == len(log2)
    assert report2["requests"]["by_status"] == report0["requests"]["by_status"]
    assert report2["requests"]["preflights"] == report0["requests"]["preflights"] == 1
    for name, report in (("n0", report0), ("n2", report2)):
        # The report's count is what the server received; the record holds each of those requests, and replays to the run's verdicts.
        server = json.loads((tmp_path / f"{name}.received.json").read_text(encoding="utf-8"))
        assert_recorded(tmp_path / f"{name}.har", server, report, mock_target_fixtures, tmp_path)
    # Which of two concurrent requests wins differs from run to run; the requests and the counts per status do not.
    assert sorted(STATUS.sub("", line) for line in log2) == sorted(STATUS.sub("", line) for line in log0)
    assert f"requests sent: {report0['requests']['sent']}" in n2.stdout
    assert holders(served.base_url, mock_target_fixtures) == before


def test_a_second_run_against_a_busy_target_is_refused(run_pytest: RunPytest, mock_target_fixtures: Any, tmp_path: Path) -> None:
    """While a run holds a target, another run against the same URL stops at once with one line saying so; then the target is free again."""
    url = "http://127.0.0.1:9/core/v1"
    locks = tmp_path / "locks"
    locks.mkdir()
    env = {LOCK_DIR_ENV: str(locks)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LOCK_DIR_ENV, str(locks))
        held = RunLock.acquire(url)
        try:
            done = run_pytest("--pyargs", "conformance", "--target-url", url, "--target-fixtures", mock_target_fixtures.source, env=env)
        finally:
            held.release()
        RunLock.acquire(url).release()
    assert done.returncode == 4, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    refused = f"ERROR: katapult-conformance: another run against {url} is in progress (pid {os.getpid()}"
    assert len(lines) == 1 and lines[0].startswith(refused), done.stderr
