"""Fixtures and hooks of the project's own tests: the in-process mock, the served mock, pytest run as a user runs it (helpers: helpers.py)."""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from helpers import MOCK_TARGET_YAML, PytestRunner, RunPytest, RunSuite, ServedMock, first_line, start_mock_server, stop, without_settings

from conformance.mock.app import ReferenceMock, VirtualClock
from conformance.mock.inprocess import mock_target
from conformance.setup.fixtures import TargetFixtures, load_target_fixtures
from conformance.wire.transport import Target

# run_suite stands on pytester's in-process runs.
pytest_plugins = ["pytester"]


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """`pytest` runs the project's tests on xdist, a worker per core, work-stealing; `-n N` chooses, `-n 0` runs them in this process.

    Work-stealing because the tests' costs differ a hundredfold: a worker that runs dry takes half of the other's queue,
    so no long test waits at the end of one worker's batch while the other is idle. Not addopts in pyproject.toml: that
    file is also the ini of every `pytest --pyargs conformance` run from this checkout.
    """
    if not config.pluginmanager.has_plugin("xdist") or hasattr(config, "workerinput"):
        return
    if config.option.numprocesses is None:
        config.option.numprocesses = "auto"
    if config.option.dist == "no" and config.option.numprocesses != 0:
        config.option.dist = "worksteal"


# Set by this session for itself, its xdist workers and every run it starts (removed at its end).
STORAGE_ENV = "HYPOTHESIS_STORAGE_DIRECTORY"


def pytest_configure(config: pytest.Config) -> None:
    """One Hypothesis storage for the whole session: the workers, their in-process runs and their children.

    Hypothesis keeps its Unicode tables there (by default .hypothesis in the working directory), building them where they
    are missing: a few seconds of CPU in each process of a fresh clone's CI otherwise. The suite's ci profile keeps no
    example database, so sharing it changes no run's examples.
    """
    if hasattr(config, "workerinput") or os.environ.get(STORAGE_ENV):
        return
    storage = tempfile.mkdtemp(prefix="katapult-tests-hypothesis-")
    os.environ[STORAGE_ENV] = storage
    config.add_cleanup(lambda: (os.environ.pop(STORAGE_ENV, None), shutil.rmtree(storage, ignore_errors=True)))


@pytest.fixture(scope="session")
def pycache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The children's shared directory, for every xdist worker: the mutants command's bytecode cache where the install is read-only."""
    # Each worker's basetemp is a directory of the session's own (popen-gwN): its parent is the session's, so both workers'
    # children share it (Python writes bytecode atomically). Children otherwise read and write __pycache__ (helpers.child_env)
    # and the session's Hypothesis storage (pytest_configure).
    base = tmp_path_factory.getbasetemp()
    root = base.parent if "PYTEST_XDIST_WORKER" in os.environ else base
    path = root / "pycache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def run_pytest(tmp_path: Path, pycache_dir: Path) -> RunPytest:
    """`run_pytest(*args, env=None, timeout=300)`: pytest in a child process, from the empty directory tmp_path/"workdir"."""
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    return PytestRunner(workdir, pycache_dir)


@pytest.fixture(scope="session")
def shared_run_pytest(tmp_path_factory: pytest.TempPathFactory, pycache_dir: Path) -> PytestRunner:
    """Like run_pytest, for module- or session-scoped fixtures (one shared working directory: write outputs to absolute paths)."""
    return PytestRunner(tmp_path_factory.mktemp("workdir"), pycache_dir)


@pytest.fixture
def serve_mock(tmp_path: Path) -> Iterator[Callable[..., ServedMock]]:
    """`serve_mock(*args)`: serve the mock (e.g. `"--mutant", name`) on a free port; every server is stopped at teardown."""
    started: list[subprocess.Popen[str]] = []

    def serve(*args: str) -> ServedMock:
        log = tmp_path / f"mock-server-{len(started)}.stderr"
        with log.open("w", encoding="utf-8") as stderr:
            process = start_mock_server("--port", "0", *args, stderr=stderr)
        started.append(process)
        base_url = first_line(process)
        if base_url is None:
            stop(process)
            pytest.fail(f"python -m conformance.mock {' '.join(args)} printed no base URL: {log.read_text(encoding='utf-8').strip()}", pytrace=False)
        return ServedMock(base_url, process)

    yield serve
    for process in started:
        stop(process)


@pytest.fixture
def served_mock(serve_mock: Callable[..., ServedMock]) -> ServedMock:
    """The faithful mock served over HTTP on 127.0.0.1 (`python -m conformance.mock --port 0`)."""
    return serve_mock()


@pytest.fixture(scope="session")
def mock_target_fixtures() -> TargetFixtures:
    """The shipped target fixtures for the mock (fixtures/mock-target.yaml)."""
    return load_target_fixtures(MOCK_TARGET_YAML, environ={})


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A clock that only moves when told to."""
    return VirtualClock()


@pytest.fixture
def reference_mock(virtual_clock: VirtualClock) -> ReferenceMock:
    """A fresh faithful mock on the virtual clock."""
    return ReferenceMock(clock=virtual_clock)


@pytest.fixture
def mock_api(reference_mock: ReferenceMock, virtual_clock: VirtualClock) -> Iterator[Target]:
    """The in-process target the suite uses by default: an httpx.MockTransport hands requests to `reference_mock`."""
    target = mock_target(reference_mock, virtual_clock)
    yield target
    target.close()


def drop_settings(patch: pytest.MonkeyPatch) -> None:
    """Take out of this process's environment what a child's leaves out (helpers.without_settings: KATAPULT_*, xdist's worker variables)."""
    for key in os.environ.keys() - without_settings().keys():
        patch.delenv(key)


@pytest.fixture
def run_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, suite_imports_warm: None) -> RunSuite:
    """`run_suite(*args, env=None)`: `pytest -p no:cacheprovider ARGS` in this process from pytester's empty directory.

    For runs where the process boundary is not the point (signals, entry points, installs, xdist and start-up keep
    run_pytest): the run sees our environment minus KATAPULT_* and xdist's worker variables, as a child would, plus `env`.
    Paths in ARGS are relative to `pytester.path`; the result is pytester's RunResult (`ret`, `stdout.fnmatch_lines`).
    """
    drop_settings(monkeypatch)

    def run(*args: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> pytest.RunResult:
        with monkeypatch.context() as scoped:
            for key, value in (env or {}).items():
                scoped.setenv(key, value)
            return pytester.runpytest_inprocess("-p", "no:cacheprovider", *map(str, args))

    return run


@pytest.fixture(scope="session")
def suite_imports_warm(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Run the suite once in this process, so pytester's in-process runs find its ~700 library modules already imported.

    pytester restores sys.modules after every in-process run, dropping whatever the run imported first (schemathesis,
    hypothesis, requests...): without this each run imports them all again, about half its time. The suite's own test
    modules are dropped afterwards, so every run still imports (and assertion-rewrites) them afresh, as a user's run does.
    """
    with contextlib.chdir(tmp_path_factory.mktemp("warm")), contextlib.redirect_stdout(io.StringIO()), pytest.MonkeyPatch.context() as patch:
        drop_settings(patch)
        pytest.main(["--pyargs", "conformance", "-p", "no:cacheprovider", "-p", "no:xdist", "-q", "--conformance-max-examples", "1"])
    for name in [name for name in sys.modules if name.startswith("conformance.test_")]:
        del sys.modules[name]
