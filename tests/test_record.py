"""`--record PATH.har`: every request a run sends and every answer, as HAR 1.2 that validates, holds no credential, stays valid
whatever stops the run, and replays offline to the verdicts the run gave."""
from __future__ import annotations

import base64
import hashlib
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import yaml
from helpers import RunSuite, child_env, run_output

from conformance.cases.scenarios import NOT_UTF8
from conformance.contract.promises import JUDGED, PROMISES
from conformance.mock.world import DEFAULT_WORLD
from conformance.setup.fixtures import TargetFixtures
from conformance.setup.redaction import PLACEHOLDER, REDACT
from conformance.tools.replay.judge import LIVE_ONLY
from conformance.tools.replay.main import main as replay_main
from conformance.tools.replay.recordings import load_recordings
from conformance.wire import api
from conformance.wire.har import HarRecorder
from conformance.wire.paths import ALLOCATE_PATH
from conformance.wire.retry import RetryPolicy
from conformance.wire.transport import Pacer, Target, TargetUnreachable

SCHEMA = Path(__file__).with_name("har-1.2.schema.json")
# The promises a record replays to the live verdict: every one but those only a live run can judge (docs/replay.md).
EXCHANGE_LEVEL = tuple(promise.id for promise in PROMISES if promise.id not in LIVE_ONLY)


@cache
def har_validator() -> Any:
    """A validator for HAR 1.2 (tests/har-1.2.schema.json)."""
    return jsonschema_rs.validator_for(json.loads(SCHEMA.read_text(encoding="utf-8")))


def valid_har(path: Path) -> dict[str, Any]:
    """The file as JSON, asserted to be HAR 1.2."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    errors = [f"{list(error.instance_path)}: {error.message}" for error in har_validator().iter_errors(data)]
    assert not errors, errors[:5]
    return data


def entries(path: Path) -> list[dict[str, Any]]:
    """The record's entries, the file asserted to be HAR 1.2."""
    found: list[dict[str, Any]] = valid_har(path)["log"]["entries"]
    return found


def exchange_verdicts(report: dict[str, Any]) -> dict[str, str]:
    """The verdict of each exchange-level promise in a JSON report; `not judged` for one it does not judge."""
    given = {promise["id"]: promise["verdict"] for promise in report["promises"]}
    return {promise: given[promise] if given.get(promise) in JUDGED else "not judged" for promise in EXCHANGE_LEVEL}


def replayed(har: Path, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    """`katapult-conformance replay HAR` in process: its exit code and its JSON report."""
    report = tmp_path / f"{har.stem}.replay.json"
    code = replay_main([str(har), "--conformance-report", str(report)])
    return code, json.loads(report.read_text(encoding="utf-8"))


def secret_bytes(data: bytes, secrets: set[str]) -> list[str]:
    """The secrets found in a file's bytes, or in any base64 body inside it."""
    found = [secret for secret in secrets if secret.encode() in data]
    record = json.loads(data)
    for item in record["log"]["entries"]:
        bodies = [item["response"]["content"].get("text", "") if item["response"]["content"].get("encoding") == "base64" else "",
                  item["request"].get("postData", {}).get("_base64", "")]
        found += [secret for body in bodies if body for secret in secrets if secret.encode() in base64.b64decode(body)]
    return found


def body_hash(item: dict[str, Any]) -> str:
    """The sha256 of an entry's request body, as the served mock hashes what it received."""
    post = item["request"].get("postData") or {}
    body = base64.b64decode(post["_base64"]) if "_base64" in post else str(post.get("text", "")).encode("utf-8")
    return hashlib.sha256(body).hexdigest()


def assert_recorded(har: Path, received: list[dict[str, str]], report: dict[str, Any], fixtures: TargetFixtures, tmp_path: Path) -> None:
    """A live run's record: HAR 1.2, one entry per request the server received (matched by X-Request-Id, method, target and body),
    every phase marked, as many as the report counts, no credential byte; it replays to the run's exchange-level verdicts."""
    items = entries(har)
    assert len(items) == len(received) == report["requests"]["total"], (len(items), len(received), report["requests"])
    by_id = {request["request_id"]: request for request in received}
    for item in items:
        request_id = next(header["value"] for header in item["response"]["headers"] if header["name"].lower() == "x-request-id")
        server = by_id[request_id]
        url = httpx.URL(item["request"]["url"])
        assert (server["method"], server["target"], server["body_sha256"]) == (item["request"]["method"], url.raw_path.decode(), body_hash(item))
    phases = Counter(item["_phase"] for item in items)
    assert {"preflight", "call", "teardown", "end-of-run check"} <= set(phases), phases
    assert all(item["_test"].startswith("conformance/test_") for item in items if item["_phase"] in ("call", "teardown"))
    assert all(item["_promises"] == ["cleanup"] for item in items if item["_phase"] in ("teardown", "end-of-run check"))
    assert not secret_bytes(har.read_bytes(), fixtures.secrets())
    code, again = replayed(har, tmp_path)
    assert code == 0
    assert exchange_verdicts(again) == exchange_verdicts(report)


def test_the_record_is_har_with_bodies_marks_and_no_credential(mock_api: Target, mock_target_fixtures: TargetFixtures, tmp_path: Path) -> None:
    """Each exchange an entry: headers, bodies (not UTF-8: base64, the request's in `_base64`), status, timings and the marks in force;
    a credential nowhere, not even inside a base64 body; a second process's recorder adds to the same file; replay reads it back."""
    path = tmp_path / "run.har"
    secrets = mock_target_fixtures.secrets()
    before = REDACT.snapshot()
    REDACT.add(secrets)
    try:
        recorder = HarRecorder(path, fresh=True)
        mock_api.observers.append(recorder.observe)
        valid = mock_target_fixtures.credential("valid")
        with recorder.marked(test="conformance/test_x.py::test_y", promises=["400 argument errors"], phase="call"):
            allocated = api.allocate(mock_api, valid, mock_target_fixtures.network_interface_id, {"id": mock_target_fixtures.allocatable[0].id})
            mock_api.send("POST", ALLOCATE_PATH, credential=valid, content=NOT_UTF8, headers={"Content-Type": "application/json"})
        token = valid.headers["Authorization"].split(" ", 1)[1]
        echoed = httpx.Response(400, content=b"\xff\xfe echoed " + token.encode(), request=allocated.request)
        other = HarRecorder(path, fresh=False)
        other.observe(echoed)
        for each in (recorder, other):
            each.close()
    finally:
        REDACT.restore(before)
    items = entries(path)
    assert [item["response"]["status"] for item in items] == [200, 404, 400]
    first, malformed, binary = items
    assert (first["_test"], first["_promises"], first["_phase"]) == ("conformance/test_x.py::test_y", ["400 argument errors"], "call")
    assert json.loads(first["response"]["content"]["text"])["virtual_machine_network_interface"]["id"] == mock_target_fixtures.network_interface_id
    assert first["time"] >= 0 and first["timings"]["wait"] == first["time"] and first["startedDateTime"].endswith("Z")
    assert base64.b64decode(malformed["request"]["postData"]["_base64"]) == NOT_UTF8
    assert binary["response"]["content"]["encoding"] == "base64" and "_test" not in binary
    assert base64.b64decode(binary["response"]["content"]["text"]) == b"\xff\xfe echoed " + PLACEHOLDER.encode()
    assert {"name": "authorization", "value": PLACEHOLDER} in first["request"]["headers"]
    assert not secret_bytes(path.read_bytes(), secrets)
    assert load_recordings(path)[1].request_body == NOT_UTF8
    HarRecorder(path, fresh=True).close()
    assert entries(path) == []


def test_a_request_without_an_answer_is_an_entry_without_a_status(tmp_path: Path) -> None:
    """A refused connection is recorded as it is exported by browsers, status 0, marked with why; replay names it as not judgeable."""
    path = tmp_path / "refused.har"
    recorder = HarRecorder(path, fresh=True)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    # No retries: one request, one entry (with --request-retries, each attempt is a request of its own and an entry).
    target = Target("live", "http://127.0.0.1:9/core/v1", httpx.Client(), Pacer(0.0, lambda _: None, time.monotonic), timeout=1.0,
                    max_requests=None, exchange=refuse, retry=RetryPolicy(0))
    target.unanswered.append(recorder.observe_unanswered)
    with pytest.raises(TargetUnreachable):
        target.send("POST", ALLOCATE_PATH, json={"ip_address": {"id": "ip_x"}})
    recorder.close()
    (item,) = entries(path)
    assert item["response"]["status"] == 0 and "Connection refused" in item["_error"]
    assert replay_main([str(path)]) == 5


def test_the_record_stays_valid_when_the_run_is_killed(tmp_path: Path, pycache_dir: Path) -> None:
    """Killed mid-run (SIGTERM ends an in-process run outright, with no cleanup of its own), the record is HAR with every entry written."""
    path = tmp_path / "stopped.har"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "--pyargs", "conformance", "-q", "--record", str(path)]
    run = subprocess.Popen(command, cwd=tmp_path, env=child_env(pycache_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None and (not path.exists() or path.stat().st_size < 50_000):
            time.sleep(0.05)
        assert run.poll() is None, "the run ended before it could be stopped"
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert len(entries(path)) > 10


# Mutants whose findings are exchange-level: a code under the wrong status, and error bodies without their envelope (which also
# leaves the rows building on the 404s not reached).
ROUND_TRIP_MUTANTS = ("missing-token-401", "errors-unwrapped")


@pytest.fixture(scope="module")
def small_token_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped mock world with the smaller of the two production allowances (200 requests a minute, not 1,000)."""
    world = yaml.safe_load(DEFAULT_WORLD.read_text(encoding="utf-8"))
    world["rate_limit"]["permitted"] = 200
    path = tmp_path_factory.mktemp("world") / "mock-world.yaml"
    path.write_text(yaml.safe_dump(world), encoding="utf-8")
    return path


@pytest.mark.parametrize("mutant", ROUND_TRIP_MUTANTS)
def test_a_record_replays_to_the_verdicts_of_its_run(mutant: str, run_suite: RunSuite, tmp_path: Path, small_token_world: Path) -> None:
    """Against a mutant, in process: the run fails, and replaying its record fails the same exchange-level promises and no other."""
    har, report = tmp_path / "run.har", tmp_path / "run.json"
    # The 429 test's burst is most of the record (~800 of ~1,000 exchanges at the shipped world's 1,000 a minute), each judged
    # again by the replay: with a 200 allowance, as the mutant matrix runs, the burst and its replay are a fifth as long.
    done = run_suite("--pyargs", "conformance", "-p", "no:xdist", "-q", "--mock-mutant", mutant, "--conformance-max-examples", "10",
                     "--mock-world", small_token_world, "--record", har, "--conformance-report", report)
    assert done.ret == 1, run_output(done)[-4000:]
    live = exchange_verdicts(json.loads(report.read_text(encoding="utf-8")))
    code, again = replayed(har, tmp_path)
    assert code == 1
    assert exchange_verdicts(again) == live
    assert "fails" in live.values() and "conforms" in live.values()
