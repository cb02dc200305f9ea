"""The mutant matrix in process: the faithful mock clean, every mutant caught and charged to exactly the promises it breaks.

Each run is the suite as `katapult-conformance mutants` runs it (same arguments, JUnit and JSON report, judged by the
runner's own classify/attributed), but in this process with pytester: a child process would pay pytest's and the
plugins' start-up (~3 s) per run, which is most of a run at MATRIX_EXAMPLES. `tests/test_mutants.py` keeps the runs
that must be child processes: the live sample over loopback HTTP and the command line itself.
"""
from __future__ import annotations

import base64
import itertools
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml
from helpers import sampled

from conformance.mock.app import MockRequest, ReferenceMock, VirtualClock
from conformance.mock.mutants import MUTANTS, mock_class
from conformance.mock.world import DEFAULT_WORLD, World, load_world
from conformance.setup.fixtures import load_target_fixtures
from conformance.setup.paths import data_path
from conformance.tools import mutation as runner

pytest_plugins = ["pytester"]

# Every mutant is caught and attributed the same at 10 examples per property as at the ci profile's 50
# (`katapult-conformance mutants` measures that), and the matrix stays a small share of CI.
MATRIX_EXAMPLES = 10
IN_PROCESS = [run for run in runner.plan(sorted(MUTANTS), live_size=0) if not run.live]
pytestmark = pytest.mark.usefixtures("suite_imports_warm")
# Tokens have 200 or 1,000 requests a minute in production (fact sheet); the matrix's mock takes 200, so the 429 burst
# of every run is a fifth as long. Every rate-limit mutant is caught the same.
PERMITTED = 200
# One fault reads as at most two regressions: a fault of what responses share (the error envelope) is charged once, not per code.
MOST_PROMISES_PER_FAULT = 2


@pytest.fixture(scope="module")
def small_token_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped mock world with the smaller of the two production allowances."""
    world = yaml.safe_load(DEFAULT_WORLD.read_text(encoding="utf-8"))
    world["rate_limit"]["permitted"] = PERMITTED
    path = tmp_path_factory.mktemp("world") / "mock-world.yaml"
    path.write_text(yaml.safe_dump(world), encoding="utf-8")
    return path


# CI runs the faithful mock and every sixth mutant (its 5 minutes); `pytest -m nightly` runs the rest.
@pytest.mark.parametrize("run", sampled(IN_PROCESS, 6, [run.mutant for run in IN_PROCESS]))
def test_in_process_run_comes_out_as_it_should(run: runner.Run, pytester: pytest.Pytester, small_token_world: Path) -> None:
    """The faithful mock is clean; a mutant is caught, fails exactly the promises it breaks, and the exit code says the same."""
    junit = pytester.path / "junit.xml"
    arguments = runner.pytest_arguments(run, junit, None, max_examples=MATRIX_EXAMPLES)
    arguments += ["--mock-world", str(small_token_world)]
    result = pytester.runpytest_inprocess(*arguments)
    failing = runner.failing_promises(junit.with_name("report.json"))
    summary = runner.parse_junit(junit) if junit.exists() else None
    status = runner.attributed(run, runner.classify(run, int(result.ret), summary), failing, full=True)
    assert status == run.expected, (f"{run.mutant}: {status}; failing promises {failing}, breaks {list(run.breaks)}, "
                                    f"failed tests {summary.failed[:3] if summary else None}\n" + "\n".join(result.outlines[-30:]))
    assert len(failing) <= MOST_PROMISES_PER_FAULT, f"{run.mutant}: one deviation fails {len(failing)} promises: {failing}"
    assert_reproduce_lines_send_what_the_tests_sent(run, "\n".join(result.outlines))
    assert_pytest_lines_keep_the_runs_options(arguments, "\n".join(result.outlines))


# --- every Reproduce: block the suite printed, sent to a fresh in-process mock of the same mutant ---------------------
MOCK_TARGET = data_path("fixtures", "mock-target.yaml")
# curl stands in for itself: each call writes its arguments (NUL-separated) and, for --data-binary @-, its stdin.
FAKE_CURL = """curl() { printf 'CALL\\0'; for a in "$@"; do printf '%s\\0' "$a"; done
  for a in "$@"; do if [ "$a" = @- ]; then printf 'STDIN\\0'; base64 -w0; printf '\\0'; fi; done; printf 'END\\0'; }
"""
GOT = re.compile(r"^Got: \S+ (\d{3})")
RATE_LIMITED = 429


@dataclass
class ReproduceBlock:
    """The lines after one `Reproduce:`, and the status the exchange above it got."""

    got: int | None
    lines: list[str] = field(default_factory=list)

    @property
    def curls(self) -> list[str]:
        """The command lines that send a request: the reproduction first, then what puts back what it changed."""
        return [line for line in self.lines if not line.startswith(("#", "katapult-conformance mock"))]

    @property
    def says_it_changes(self) -> bool:
        """Whether a line says the request changes an allocation and the last line puts it back."""
        return any(line.startswith("#") and "the last line puts it back" in line for line in self.lines)


def reproduce_blocks(output: str) -> list[ReproduceBlock]:
    """Every `Reproduce:` block of a run's output: a failed test's, and the example of each finding the run's own cases report
    (indented); its lines are indented two spaces deeper than it."""
    blocks: list[ReproduceBlock] = []
    got: int | None = None
    current: ReproduceBlock | None = None
    indent = 0
    for line in output.splitlines():
        if current is not None and line.startswith(" " * (indent + 2)):
            current.lines.append(line[indent + 2:])
            continue
        current = None
        if (found := GOT.match(line.lstrip())) is not None:
            got = int(found.group(1))
        if line.strip() == "Reproduce:":
            indent = len(line) - len(line.lstrip())
            current = ReproduceBlock(got)
            blocks.append(current)
    return blocks


def pytest_lines(output: str) -> list[list[str]]:
    """The words of every `Reproduce: pytest ...` line (a generated test's seed note)."""
    return [shlex.split(line.split("Reproduce: ", 1)[1]) for line in output.splitlines() if "Reproduce: pytest " in line]


def requests_of(lines: list[str], environ: dict[str, str]) -> list[list[httpx.Request]]:
    """What each command line makes curl send, run by bash (`set -u`: a variable nobody set is an error) in `environ`."""
    script = FAKE_CURL + "".join(f"printf 'LINE\\0'; ( set -u; {line} ) || exit 9\n" for line in lines)
    done = subprocess.run(["bash", "-c", script], capture_output=True, env={"PATH": "/usr/bin:/bin", **environ}, check=False, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"the shell refused a reproduce line: {done.stderr.decode()}\n" + "\n".join(lines)
    sent: list[list[httpx.Request]] = []
    tokens = done.stdout.split(b"\0")
    index = 0
    while index < len(tokens) - 1:
        token = tokens[index]
        if token == b"LINE":
            sent.append([])
            index += 1
            continue
        assert token == b"CALL", tokens[index:index + 3]
        arguments: list[bytes] = []
        index += 1
        stdin = b""
        while tokens[index] != b"END":
            if tokens[index] == b"STDIN":
                stdin = base64.b64decode(tokens[index + 1])
                index += 2
                continue
            arguments.append(tokens[index])
            index += 1
        index += 1
        sent[-1].append(curl_request([argument.decode("utf-8", "surrogateescape") for argument in arguments], stdin))
    return sent


def curl_request(arguments: list[str], stdin: bytes) -> httpx.Request:
    """The request curl would send for these arguments (-X, -H, --data-binary/-d, the URL)."""
    method, headers, body, url = "GET", [], b"", ""
    options = iter(arguments)
    for argument in options:
        if argument == "-X":
            method = next(options)
        elif argument == "-H":
            name, _, value = next(options).partition(":")
            headers.append((name, value.lstrip(" ")))
        elif argument in ("--data-binary", "-d"):
            data = next(options)
            body = stdin if data == "@-" else data.encode("utf-8", "surrogateescape")
        elif not argument.startswith("-"):
            url = argument
    return httpx.Request(method, url, headers=headers, content=body)


def served_mock(line: str, mutant: str) -> tuple[str | None, Path | None]:
    """The mutant and world a `katapult-conformance mock ... &` line serves."""
    words = shlex.split(line.split("&", 1)[0])
    assert words[:4] == ["katapult-conformance", "mock", "--port", "8080"], line
    options = dict(zip(words[4::2], words[5::2], strict=True))
    assert set(options) <= {"--mutant", "--world"}, line
    assert options.get("--mutant") == (None if mutant == "faithful" else mutant), f"the mock line names another mock than the run's: {line}"
    return options.get("--mutant"), Path(options["--world"]) if "--world" in options else None


def answer(mock: ReferenceMock, request: httpx.Request) -> int | None:
    """The status the mock answers the request with (None: it never answers, or closes the connection without an answer)."""
    assert request.url.host == "127.0.0.1" and request.url.port == 8080, request.url
    headers: dict[str, str] = {}
    for name, value in request.headers.multi_items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    response = mock.handle(MockRequest(request.method, request.url.path, dict(request.url.params), headers, request.content))
    return None if response.hang or response.drop else int(response.status)


def assert_reproduce_lines_send_what_the_tests_sent(run: runner.Run, output: str) -> None:
    """Each reproduce block, sent to a fresh in-process mock of the run's mutant with the variables set to what the fixtures resolve
    to: it changes no allocation unless it says so, and its put-back line restores every IP."""
    fixtures = load_target_fixtures(MOCK_TARGET, environ={})
    environ = {reference.variable: secret for credential in fixtures.credentials.values()
               for secret, reference in credential.secret_references().items()}
    blocks = reproduce_blocks(output)
    sent = requests_of([line for block in blocks for line in block.curls], environ)
    worlds: dict[Path | None, World] = {}
    at = 0
    for block in blocks:
        commands, at = sent[at:at + len(block.curls)], at + len(block.curls)
        name, world_path = served_mock(block.lines[0], run.mutant)
        if world_path not in worlds:
            worlds[world_path] = load_world(world_path or DEFAULT_WORLD)
        mock = mock_class(name)(worlds[world_path].fresh(), clock=VirtualClock())
        before = {ip.id: ip.allocated_to for ip in mock.world.ips.values()}
        reproduction, put_back = (commands[:-1], commands[-1]) if block.says_it_changes else (commands, [])
        statuses = [answer(mock, request) for line in reproduction for request in line]
        shown = "\n".join(block.lines)
        # It reproduces the finding: the same answer (a 429 needs the burst before it, which no one line sends).
        assert statuses[-1] == block.got or block.got == RATE_LIMITED, f"{run.mutant}: answered {statuses[-1]}, not {block.got}:\n{shown}"
        after = {ip.id: ip.allocated_to for ip in mock.world.ips.values()}
        assert after == before or block.says_it_changes, f"{run.mutant}: a reproduce line changed an allocation without saying so:\n{shown}"
        for request in put_back:
            answer(mock, request)
        assert {ip.id: ip.allocated_to for ip in mock.world.ips.values()} == before, f"{run.mutant}: not put back by its line:\n{shown}"


def assert_pytest_lines_keep_the_runs_options(arguments: list[str], output: str) -> None:
    """A generated test's `Reproduce: pytest ...` is its own exact command: every suite option the run was given, with its value."""
    given = dict(itertools.pairwise(arguments))
    shaping = {flag: given[flag] for flag in ("--mock-mutant", "--mock-world", "--conformance-max-examples") if flag in given}
    for words in pytest_lines(output):
        shown = dict(word.split("=", 1) for word in words if word.startswith("--") and "=" in word)
        assert {flag: shown.get(flag) for flag in shaping} == shaping, f"{shlex.join(words)} drops an option of the run: {shaping}"
