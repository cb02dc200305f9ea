"""A user's mistakes, as issue 23 found them: each is one line naming the file, key or option and the fix, with the exit
code the command documents and no traceback; and the smaller faults a new user met (tabs, https to a plain-HTTP port,
init's example, the run lock, a failing case printed as nothing, a reproduce line for an interrupt, drift on a 404)."""
from __future__ import annotations

import datetime
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import MOCK_TARGET_YAML

from conformance.gate.baseline import BaselineError, load_baseline
from conformance.gate.preflight import SetupUnreachable, preflight
from conformance.gate.runlock import LOCK_DIR_ENV, RunLock, RunLockError, lock_path
from conformance.mock.app import ReferenceMock
from conformance.mock.server import MockServer
from conformance.mock.world import DEFAULT_WORLD, WorldError, load_world
from conformance.setup.fixtures import FixturesError, load_target_fixtures
from conformance.tools.cli import main
from conformance.wire import transport
from conformance.wire.retry import BACKOFF_BASE, DEFAULT_RETRIES, JITTER
from conformance.wire.transport import live_target

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
GENERATED = str(ROOT / "conformance" / "test_generated.py")
ENTRY = """- promise: malformed bytes never crash the server
  check: no 5xx
  status: 500
  code: unhandled_exception
  reason: upstream issue 1234
  expires: {expires}
"""
FIXTURES = "credentials:\n  valid: kmock-valid-7d1e0c5a9b\nnetwork_interface:\n  id: {interface}\n{rest}"


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single line a command printed on stderr (and nothing that looks like a traceback)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def fixtures_file(tmp_path: Path, interface: str = "vmnet_mockAlpha000001", rest: str = "") -> Path:
    path = tmp_path / "target.yaml"
    path.write_text(FIXTURES.format(interface=interface, rest=rest), encoding="utf-8")
    return path


@pytest.fixture
def served() -> Iterator[str]:
    """The faithful mock served over plain HTTP in this process, on a free port: its base URL."""
    server = MockServer(ReferenceMock(), "127.0.0.1", 0).start()
    try:
        yield server.base_url
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# Item 2: every value read from YAML is type-checked, the file and key named.

def test_an_unquoted_date_that_is_no_date_names_the_baseline_line_and_key(tmp_path: Path) -> None:
    """PyYAML raises while building `2026-13-01`: that is the file, its line, the entry and key, and the fix, not a ValueError."""
    path = tmp_path / "bad-date.yaml"
    path.write_text(ENTRY.format(expires="2026-13-01"), encoding="utf-8")
    with pytest.raises(BaselineError) as refused:
        load_baseline(path)
    assert str(refused.value).startswith(f"baseline {path} line 6, entry 1 expires: 2026-13-01 is not a date (month must be in 1..12);")
    assert "2027-03-31" in str(refused.value)


def test_the_baseline_entry_docs_show_loads_with_its_unquoted_date(tmp_path: Path) -> None:
    """The entry of docs/baseline.md, as written (an unquoted date), is still read as that date."""
    block = re.search(r"```yaml\n(# ci/baseline.yaml\n.*?)```", (ROOT / "docs" / "baseline.md").read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None
    path = tmp_path / "baseline.yaml"
    path.write_text(block.group(1), encoding="utf-8")
    assert load_baseline(path).entries[0].expires == datetime.date(2027, 3, 31)


@pytest.mark.parametrize(("value", "says"), [
    ("2026-13-01", "line 6, entry 1 expires: 2026-13-01 is not a date"),
    ("'2026-13-01'", "entry 1: expires must be a date like 2027-03-31, got a string ('2026-13-01')"),
    ("[2027, 3, 31]", "entry 1: expires must be a date like 2027-03-31, got a list"),
])
def test_replay_refuses_a_bad_baseline_date_with_its_documented_code(value: str, says: str, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """replay documents 2 for a baseline it cannot read: one line, quoted or not (it was a traceback and 1, "does not conform")."""
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    assert "  2  a recording or the baseline could not be read" in capsys.readouterr().out
    baseline, har = tmp_path / "bad-date.yaml", tmp_path / "x.har"
    baseline.write_text(ENTRY.format(expires=value), encoding="utf-8")
    har.write_text(json.dumps({"log": {"entries": []}}), encoding="utf-8")
    assert main(["replay", "--baseline", str(baseline), str(har)]) == 2
    assert says in one_error_line(capsys)


@pytest.mark.parametrize(("interface", "rest", "says"), [
    ("2026-13-01", "", "line 4, network_interface.id: 2026-13-01 is not a date (month must be in 1..12); quote it"),
    ("2026-12-01", "", "network_interface.id must be a string (an interface id like vmnet_...), got a date (2026-12-01); quote it"),
    ("12345", "", "network_interface.id must be a string (an interface id like vmnet_...), got a number (12345); quote it"),
    ("vmnet_a", "other_network_interface: {id: 42}\n", "other_network_interface.id must be a string"),
    ("vmnet_a", "ip_addresses:\n  allocatable: {id: ip_a, address: 185.199.221.10}\n", "ip_addresses.allocatable must be a list of"
     " {id, address}, got a mapping"),
    ("vmnet_a", "ip_addresses:\n  allocatable: [ip_a]\n", "ip_addresses.allocatable[0] must be a mapping of keys, got a string ('ip_a')"),
    ("vmnet_a", "ip_addresses:\n  allocated_elsewhere: {id: ip_b, address: 3232235777}\n",
     "ip_addresses.allocated_elsewhere.address must be a string, got a number (3232235777)"),
    ("vmnet_a", "rate_limit: {provoke: 1}\n", "rate_limit.provoke must be true or false, got a number (1)"),
    ("vmnet_a", "rate_limit: [provoke]\n", "rate_limit must be a mapping of keys, got a list"),
    ("vmnet_a", "1: one\nsomething: else\n", "unknown key 1 (known keys:"),
])
def test_a_fixtures_value_of_the_wrong_type_is_one_line_naming_the_key(interface: str, rest: str, says: str, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Unquoted dates and numbers, lists where maps belong and the reverse: the file and the key, for `doctor` as for the loader."""
    path = fixtures_file(tmp_path, interface, rest)
    with pytest.raises(FixturesError) as refused:
        load_target_fixtures(path, environ={})
    assert str(path) in str(refused.value) and says in str(refused.value)
    assert main(["doctor", "--target-fixtures", str(path)]) == 4
    assert says in one_error_line(capsys)


@pytest.mark.parametrize("valid", ["1234567890", "{headers: {Authorization: 1234567890}}", "[1234567890]"])
def test_a_credential_of_the_wrong_type_is_named_but_not_shown(valid: str, tmp_path: Path) -> None:
    """The key and what YAML read, never the value: it is a secret."""
    path = tmp_path / "target.yaml"
    path.write_text(f"credentials:\n  valid: {valid}\nnetwork_interface:\n  id: vmnet_a\n", encoding="utf-8")
    with pytest.raises(FixturesError, match=r"credentials\.valid(\.headers\.Authorization)? must be .*, got a (number; quote it|list)") as refused:
        load_target_fixtures(path, environ={})
    assert "1234567890" not in str(refused.value)


@pytest.mark.usefixtures("suite_imports_warm")
@pytest.mark.parametrize("option", ["--target-fixtures", "--baseline"])
def test_run_refuses_an_unquoted_non_date_with_exit_4_and_one_line(option: str, pytester: pytest.Pytester, tmp_path: Path) -> None:
    """`run` on an unquoted 2026-13-01 in either file: the usage error naming the file and key (was INTERNALERROR, exit 3)."""
    if option == "--baseline":
        path = tmp_path / "bad-date.yaml"
        path.write_text(ENTRY.format(expires="2026-13-01"), encoding="utf-8")
    else:
        path = fixtures_file(tmp_path, "2026-13-01")
    result = pytester.runpytest_inprocess("--pyargs", "conformance", "-p", "no:cacheprovider", option, str(path))
    assert result.ret == 4, result.stdout.str() + result.stderr.str()
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: katapult-conformance:") and str(path) in errors[0], errors
    assert "2026-13-01 is not a date" in errors[0] and "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


WORLD_MISTAKES = [
    ("rate_limit:\n  permitted: lots\n", "rate_limit.permitted must be a whole number of requests, got a string ('lots')"),
    ("client_address: 2026-13-01\n", "line 1, client_address: 2026-13-01 is not a date"),
    ("tokens: kmock-valid\n", "tokens must be a list, got a string ('kmock-valid')"),
    ("tokens:\n  - {token: 1234567890}\n", "tokens[0].token must be a string, got a number (1234567890); quote it"),
    ("ip_addresses:\n  - {id: ip_a, address: 185.199.221.10, network: netw_a, allocated_to: 5}\n",
     "ip_addresses[0].allocated_to must be an interface id or null, got a number (5)"),
]


def broken_world(tmp_path: Path, change: str) -> Path:
    """The shipped world with one top-level key replaced."""
    key = change.split(":", 1)[0]
    lines = DEFAULT_WORLD.read_text(encoding="utf-8").splitlines(keepends=True)
    kept, skipping = [], False
    for line in lines:
        if line.startswith(f"{key}:"):
            skipping = True
            continue
        if skipping and (line.startswith((" ", "#")) or not line.strip()):
            continue
        skipping = False
        kept.append(line)
    path = tmp_path / "world.yaml"
    path.write_text(change + "".join(kept), encoding="utf-8")
    return path


@pytest.mark.parametrize(("change", "says"), WORLD_MISTAKES)
def test_a_world_value_of_the_wrong_type_is_one_line_for_mock_and_doctor(change: str, says: str, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """mock --world: its documented 2; doctor --mock-world: 4; both one line naming the file and the key."""
    path = broken_world(tmp_path, change)
    with pytest.raises(WorldError, match=re.escape(says)):
        load_world(path)
    assert main(["mock", "--port", "0", "--world", str(path)]) == 2
    line = one_error_line(capsys)
    assert str(path) in line and says in line
    assert main(["doctor", "--mock-world", str(path)]) == 4
    line = one_error_line(capsys)
    assert str(path) in line and says in line


@pytest.mark.usefixtures("suite_imports_warm")
def test_run_refuses_a_world_value_of_the_wrong_type(pytester: pytest.Pytester, tmp_path: Path) -> None:
    path = broken_world(tmp_path, WORLD_MISTAKES[0][0])
    result = pytester.runpytest_inprocess("--pyargs", "conformance", "-p", "no:cacheprovider", "--mock-world", str(path))
    assert result.ret == 4
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1 and WORLD_MISTAKES[0][1] in errors[0] and "--mock-world" in errors[0], errors


@pytest.mark.parametrize(("cassette", "says"), [
    ("interactions:\n- recorded_at: 2026-13-01\n", "line 2, interactions[0].recorded_at: 2026-13-01 is not a date"),
    ("interactions:\n- request: POST\n  response: {code: 200}\n", "has an interaction whose values are not of the types its format needs"),
])
def test_replay_names_what_is_wrong_in_a_cassette(cassette: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "staging.cassette.yaml"
    path.write_text(cassette, encoding="utf-8")
    assert main(["replay", str(path)]) == 2
    line = one_error_line(capsys)
    assert str(path) in line and says in line


# Item 7: the mock's bad options.

@pytest.mark.parametrize(("args", "says"), [
    (["--mutant", "nope"], "--mutant 'nope' is not a mutant; `katapult-conformance mock --list-mutants` lists them"),
    (["--mutant", "invalid-token-40"], "(did you mean invalid-token-401"),
    (["--mutant", "faithful,nope"], "--mutant 'nope' is not a mutant"),
    (["--port", "99999"], "argument --port: 99999 is not a port: use 1 to 65535, or 0 for a free one"),
    (["--window-seconds", "0"], "argument --window-seconds: 0: a window must last more than 0 seconds"),
    (["--permitted", "-5"], "argument --permitted: -5 requests: a window must permit at least 1"),
])
def test_mock_refuses_a_bad_value_with_exit_4(args: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad value is 4, as the mock's help says (2 is for a --world it cannot read); one line, no traceback, nothing served."""
    with pytest.raises(SystemExit):
        main(["mock", "--help"])
    shown = capsys.readouterr().out
    assert "  2  the --world file could not be read" in shown and "  4  an unknown option or a bad value" in shown
    try:
        code = main(["mock", "--port", "0", *args]) if "--port" not in args else main(["mock", *args])
    except SystemExit as exited:
        code = int(str(exited.code))
    assert code == 4
    line = one_error_line(capsys)
    assert line.startswith("katapult-conformance mock: error:") and says in line
    assert capsys.readouterr().out == ""


def test_doctor_refuses_an_unknown_mock_mutant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--mock-mutant", "nope"]) == 4
    assert "unknown mutant 'nope'" in one_error_line(capsys)


# Item 9: the smaller ones.

def test_tab_indented_fixtures_say_tabs_are_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "target.yaml"
    path.write_text("credentials:\n\tvalid: kmock-valid-7d1e0c5a9b\n", encoding="utf-8")
    with pytest.raises(FixturesError) as refused:
        load_target_fixtures(path, environ={})
    assert str(refused.value) == (f"target fixtures {path} is not valid YAML at line 2: it is indented with a tab, and YAML indents with"
                                  " spaces only; replace the tabs with spaces")


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Live targets made from now on wait on a clock that only notes each wait: lost requests are still sent again, at once."""
    waits: list[float] = []
    monkeypatch.setattr(transport, "LIVE_CLOCK", (waits.append, time.monotonic))
    return waits


def backoffs_in(waits: list[float]) -> int:
    """How many of the waits were backoffs before a resend (at least BACKOFF_BASE jittered; the pacer's gaps are a millisecond)."""
    return sum(wait >= BACKOFF_BASE * (1 - JITTER) for wait in waits)


def test_https_to_a_plain_http_port_says_use_http(served: str, backoffs: list[float]) -> None:
    """`[SSL: WRONG_VERSION_NUMBER]` alone does not say what to do."""
    target = live_target(served.replace("http://", "https://"), timeout=5.0, max_requests=20, max_rate=1000.0)
    try:
        with pytest.raises(SetupUnreachable, match=r"WRONG_VERSION_NUMBER|RECORD_LAYER") as refused:
            preflight(target, load_target_fixtures(MOCK_TARGET_YAML, environ={}))
    finally:
        target.close()
    assert str(refused.value).endswith("; that port answers plain HTTP, not TLS: use an http:// --target-url")
    assert backoffs_in(backoffs) == DEFAULT_RETRIES  # the message is the one after every resend, as a user's run gives it


def test_a_refused_explicit_port_does_not_suggest_https(backoffs: list[float]) -> None:
    """Nothing listens on the port the URL names, whatever the scheme: https would not help."""
    target = live_target(f"http://127.0.0.1:{free_port()}/core/v1", timeout=5.0, max_requests=20, max_rate=1000.0)
    try:
        with pytest.raises(SetupUnreachable, match="refused") as refused:
            preflight(target, load_target_fixtures(MOCK_TARGET_YAML, environ={}))
    finally:
        target.close()
    assert "https" not in str(refused.value)
    assert backoffs_in(backoffs) == DEFAULT_RETRIES


def test_init_example_describes_the_other_interface_truthfully_and_gives_two_ips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The preflight wants the other interface on another virtual machine; the concurrency scenarios need two allocatable IPs."""
    assert main(["init", str(tmp_path)]) == 0
    written = tmp_path / "staging.yaml"
    text = written.read_text(encoding="utf-8")
    section = text.split("other_network_interface:", 1)[1].split("ip_addresses:", 1)[0]
    assert "another virtual machine" in section.lower()
    fixtures = load_target_fixtures(written, environ={"KATAPULT_API_TOKEN": "a-token-of-twenty-chars"})
    assert len(fixtures.allocatable) == 2 and fixtures.allocatable_ip(1) != fixtures.allocatable_ip(0)


def test_one_lock_for_every_name_of_this_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """localhost, 127.0.0.1 and [::1] on one port are one server, so one lock; another port or another host name is another."""
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path))
    same = {lock_path(url) for url in ("http://localhost:8080/core/v1", "http://127.0.0.1:8080/core/v1/", "http://[::1]:8080/core/v1",
                                       "https://LOCALHOST:8080/core/v1")}
    assert len(same) == 1
    assert lock_path("http://127.0.0.1:8081/core/v1") not in same
    assert lock_path("https://api.staging.example/core/v1") != lock_path("https://api.other.example/core/v1")
    assert lock_path("https://api.staging.example/core/v1") == lock_path("https://API.staging.example:443/core/v1/")
    held = RunLock.acquire("http://127.0.0.1:8080/core/v1")
    try:
        with pytest.raises(RunLockError, match="another run against http://localhost:8080/core/v1 is in progress"):
            RunLock.acquire("http://localhost:8080/core/v1")
    finally:
        held.release()
    assert list(tmp_path.iterdir()) == []
    RunLock.acquire("http://localhost:8080/core/v1").release()
    assert list(tmp_path.iterdir()) == [], "a released lock leaves its file behind"


def test_a_lock_file_removed_while_being_taken_is_taken_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that opened the file just before its holder removed it does not hold a lock nobody else can see."""
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path))
    url = "http://127.0.0.1:8080/core/v1"
    path = lock_path(url)
    stale = path.open("a+", encoding="utf-8")
    path.unlink()
    try:
        held = RunLock.acquire(url)
        assert held.handle is not None
        with pytest.raises(RunLockError):
            RunLock.acquire(url)
        held.release()
    finally:
        stale.close()


def test_doctor_honours_a_running_runs_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Its preflight would spend the running run's rate window: it refuses, as a second run does, before sending anything."""
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path))
    url = f"http://127.0.0.1:{free_port()}/core/v1"
    held = RunLock.acquire(url.replace("127.0.0.1", "localhost"))
    try:
        assert main(["doctor", "--target-url", url, "--target-fixtures", str(MOCK_TARGET_YAML)]) == 4
    finally:
        held.release()
    assert f"another run against {url} is in progress" in one_error_line(capsys)


@pytest.mark.usefixtures("suite_imports_warm")
def test_a_failing_example_prints_what_was_drawn(pytester: pytest.Pytester) -> None:
    """schemathesis swaps hypothesis' printer for one that prints nothing: the failing batch read `property_(batch=,)`."""
    result = pytester.runpytest_inprocess(GENERATED, "-p", "no:cacheprovider", "--mock-mutant", "errors-without-x-api-schema",
                                          "-k", "test_every_response_conforms")
    output = result.stdout.str()
    assert result.ret == 1, output[-3000:]
    assert "Failing test case: property_(" in output and "batch=," not in output
    assert "    batch=[GeneratedRequest(identity=" in output


INTERRUPTER = """
import pytest


@pytest.fixture(autouse=True)
def interrupted_after_three_requests(request, monkeypatch):
    sender = request.module.Sender
    send, sent = sender.send, []

    def interrupting(self, generated):
        sent.append(generated)
        if len(sent) == 3:
            raise KeyboardInterrupt
        return send(self, generated)

    monkeypatch.setattr(sender, "send", interrupting)
"""


@pytest.mark.usefixtures("suite_imports_warm")
def test_an_interrupted_property_prints_no_reproduce_line(pytester: pytest.Pytester) -> None:
    """An interrupt is nothing to reproduce: the seed's `Reproduce:` note is for failures only."""
    pytester.makepyfile(interrupter=INTERRUPTER)
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess(GENERATED, "-p", "no:cacheprovider", "-p", "interrupter", "-k", "test_every_response_conforms",
                                          no_reraise_ctrlc=True)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 2 and "KeyboardInterrupt" in output, output[-3000:]
    assert "Reproduce" not in output, output[-3000:]


def test_drift_on_a_404_is_one_line(served: str, capsys: pytest.CaptureFixture[str]) -> None:
    """httpx's status error runs to two lines with a documentation link; the status is what the user needs."""
    assert main(["drift", f"{served}/openapi.json"]) == 2
    line = one_error_line(capsys)
    assert line == (f"katapult-conformance drift: error: cannot fetch {served}/openapi.json: it answered 404 Not Found; check the URL,"
                    " or pass a local copy of the document.")


def test_a_failure_group_with_notes_around_a_failure_without_is_reported() -> None:
    """hypothesis' group of distinct failures carries notes its first failure lacks: the reader's text joins them (it was a
    TypeError, list + tuple, and the run an INTERNALERROR)."""
    from conformance.contract.checks import ConformanceFailure
    from conformance.gate.reporting import reader_text

    failure = ConformanceFailure("Status differs", "500", "404", promise="no server errors", check="no 5xx")
    group = ExceptionGroup("two distinct failures", [failure, ValueError("another")])
    group.add_note("Seed: 1. Reproduce: pytest ...")
    assert reader_text(failure, group).endswith("\nSeed: 1. Reproduce: pytest ...")
