"""Start-up: every pytest run in an environment with the suite installed loads its plugins, so each run imports only what it needs.

A run that does not name the suite imports no session, mock or preflight; a mock run never imports the preflight, the
request log or the mutant catalogue (unless a mutant is asked for); a live run never imports the mock. Measured figures
are in docs/speed.md; these tests hold the shape that gives them.
"""
from __future__ import annotations

import gc
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from conformance.gate.session import make_target
from conformance.setup.settings import build_config

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
MOCK_FIXTURES = ROOT / "fixtures" / "mock-target.yaml"


QUIET = ("-q", "-p", "no:cacheprovider", "-p", "no:randomly")
HOST_TEST = "def test_host():\n    pass\n"
HOST_TEST_USING_THE_MOCK = ("import httpx\n\n\ndef test_host(katapult_mock):\n"
                            "    assert httpx.get('https://api.katapult.io/core/v1/ip_addresses/_').status_code == 400\n")
LIVE = ("--pyargs", "conformance", "--target-url", "http://127.0.0.1:9/core/v1", "--target-fixtures", str(MOCK_FIXTURES))
# pytest runs made one after another in one fresh interpreter, and the modules it had imported as each ended.
PROBE = ("import json, sys, pytest\n"
         "stages = []\n"
         "for args in json.loads(sys.argv[1]):\n"
         "    pytest.main(args)\n"
         "    stages.append(sorted(sys.modules))\n"
         "print(json.dumps(stages))\n")


def imported_by(workdir: Path, *runs: tuple[str, ...]) -> list[set[str]]:
    """The modules imported when each of these pytest runs ended, made one after another in a fresh interpreter from `workdir`.

    Modules stay imported: a later run is judged on what it adds, so only runs that import nothing a later one must not import
    share an interpreter (each run's checks say what the runs before it had not imported).
    """
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps([[*QUIET, *args] for args in runs])], capture_output=True, text=True,
                          cwd=workdir, timeout=120, check=False)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "[]"
    assert last.startswith("[["), done.stdout[-2000:] + done.stderr[-2000:]
    stages = [set(modules) for modules in json.loads(last)]
    assert len(stages) == len(runs), done.stdout[-2000:] + done.stderr[-2000:]
    return stages


@pytest.fixture(scope="module")
def first_runs(tmp_path_factory: pytest.TempPathFactory) -> list[set[str]]:
    """In one fresh interpreter: a host project's test collected (not naming the suite), then the suite collected on the mock, then
    with a mutant asked for. Each imports nothing the runs after it must not; the host test using katapult_mock does, and a live run."""
    workdir = tmp_path_factory.mktemp("startup")
    (workdir / "test_host.py").write_text(HOST_TEST, encoding="utf-8")
    return imported_by(workdir, ("--co", "-p", "no:respx", "test_host.py"), ("--co", "--pyargs", "conformance"),
                       ("--co", "--pyargs", "conformance", "--mock-mutant", "200-invalid-json"))


def ours(modules: set[str], *prefixes: str) -> list[str]:
    """The modules under any of these dotted prefixes."""
    return sorted(name for name in modules if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes))


def test_a_run_that_does_not_name_the_suite_sets_nothing_of_it_up(first_runs: list[set[str]]) -> None:
    """A host project's own tests: the plugins load (the gate's and katapult_mock's), but no session, target, mock or preflight,
    and no respx (respx's own plugin, which imports it, left out: it is not ours)."""
    modules = first_runs[0]
    assert {"conformance.gate.plugin", "conformance.tools.katapult_mock"} <= modules
    assert ours(modules, "conformance.gate.session", "conformance.gate.preflight", "conformance.gate.ledger", "conformance.mock",
                "conformance.cases", "conformance.tools.mock_router", "respx") == []


def test_a_test_asking_for_katapult_mock_loads_the_mock_and_not_the_gate(tmp_path: Path) -> None:
    """A host test using the fixture (run, not only collected): respx and the mock are imported then, the gate's session never."""
    (tmp_path / "test_host.py").write_text(HOST_TEST_USING_THE_MOCK, encoding="utf-8")
    (modules,) = imported_by(tmp_path, ("-p", "no:respx", "test_host.py"))
    assert {"conformance.tools.mock_router", "conformance.mock.app", "respx"} <= modules
    assert ours(modules, "conformance.gate.session", "conformance.gate.preflight", "conformance.gate.ledger", "conformance.cases",
                "conformance.mock.mutants") == []


def test_a_mock_run_imports_no_live_only_module(first_runs: list[set[str]]) -> None:
    """The embedded mock needs no preflight, request log or run lock, and no mutant catalogue unless a mutant is asked for."""
    host, modules, with_mutant = first_runs
    assert "conformance.mock.inprocess" in modules - host
    assert ours(modules, "conformance.gate.preflight", "conformance.gate.runlock", "conformance.wire.request_log",
                "conformance.mock.mutants", "conformance.mock.server") == []
    assert "conformance.mock.mutants" in with_mutant


def test_a_live_run_never_imports_the_mock(tmp_path: Path) -> None:
    """Against a URL, nothing of the embedded mock is loaded (collecting only: nothing is sent)."""
    (modules,) = imported_by(tmp_path, ("--co", *LIVE))
    assert "conformance.test_generated" in modules
    assert ours(modules, "conformance.mock") == []


def test_the_mock_target_builds_no_tls_and_reads_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its client is handed the in-process transport: no connection pool, no TLS context, no proxy mounts (whatever the environment says)."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("ALL_PROXY", "http://proxy.invalid:3128")
    target = make_target(build_config({}, environ={}))
    try:
        assert isinstance(target.client._transport, httpx.MockTransport)
        assert target.client._mounts == {}
    finally:
        target.close()


def test_no_router_library_between_the_target_and_the_mock() -> None:
    """The in-process mock is an httpx.MockTransport handler: respx (whose pytest plugin every run in the environment would load,
    about a tenth of a second) is not a dependency, only the `mock` extra's, and only the katapult_mock fixture's object imports it."""
    package = ROOT / "conformance"
    importing = [str(path.relative_to(ROOT)) for path in package.rglob("*.py") if "import respx" in path.read_text(encoding="utf-8")]
    assert importing == ["conformance/tools/mock_router.py"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert not [requirement for requirement in project["dependencies"] if requirement.startswith("respx")]
    assert [requirement for requirement in project["optional-dependencies"]["mock"] if requirement.startswith("respx")]


class FreezeCounts:
    """What the collector's permanent generation held as each test of an in-process run started."""

    def __init__(self) -> None:
        self.during: list[int] = []

    def pytest_runtest_call(self) -> None:
        self.during.append(gc.get_freeze_count())


def run_one_scenario(pytester: pytest.Pytester, counts: FreezeCounts) -> pytest.RunResult:
    """The suite's first scenario, in this process, on the embedded mock."""
    return pytester.runpytest_inprocess("--pyargs", "conformance.test_scenarios", "-p", "no:cacheprovider", "-q", "-k", "missing-token",
                                        plugins=[counts])


@pytest.mark.usefixtures("suite_imports_warm")
def test_a_run_keeps_its_start_up_heap_from_the_collector_and_gives_it_back(pytester: pytest.Pytester) -> None:
    """While the tests run the heap the run started with is frozen (full collections skip it); when the run ends, nothing is."""
    counts = FreezeCounts()
    assert run_one_scenario(pytester, counts).ret == 0
    assert counts.during and min(counts.during) > 0
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("suite_imports_warm")
def test_a_host_that_froze_its_own_heap_keeps_it_as_it_was(pytester: pytest.Pytester) -> None:
    """A process that froze its heap before the run manages it: the run freezes nothing more and unfreezes nothing."""
    counts = FreezeCounts()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert run_one_scenario(pytester, counts).ret == 0
        assert counts.during and max(counts.during) <= frozen
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
