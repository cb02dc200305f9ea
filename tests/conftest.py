"""Shared helpers for the project's own tests: the in-process mock, the mock served over HTTP, and pytest run as a user runs it."""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.mock.app import ReferenceMock, VirtualClock
from conformance.resources import data_path
from conformance.target import Target, mock_target
from conformance.targetfile import TargetFixtures, load_target_fixtures

MOCK_TARGET_YAML = data_path("fixtures", "mock-target.yaml")
SUBPROCESS_TIMEOUT = 300.0
SERVER_START_TIMEOUT = 20.0

Completed = subprocess.CompletedProcess[str]
RunPytest = Callable[..., Completed]


@dataclass
class ServedMock:
    """A `python -m conformance.mock` child process and the base URL it printed."""

    base_url: str
    process: subprocess.Popen[str]

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.base_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def child_env(pycache: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without KATAPULT_* settings, with bytecode cached under `pycache`, plus `env`."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("KATAPULT_")}
    # pytest rewrites every plugin module on start-up; caching that (outside site-packages) saves ~4 s per child run.
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    base["PYTHONPYCACHEPREFIX"] = str(pycache)
    base.update(env or {})
    return base


@pytest.fixture(scope="session")
def pycache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One bytecode cache for every child process of this test session."""
    return tmp_path_factory.mktemp("pycache")


@pytest.fixture
def run_pytest(tmp_path: Path, pycache_dir: Path) -> RunPytest:
    """`run_pytest(*args, env=None, timeout=300)`: `python -m pytest -p no:cacheprovider ARGS` from an empty directory.

    The child sees our environment minus KATAPULT_* (so the caller's settings never leak in), plus `env`.
    """
    workdir = tmp_path / "workdir"
    workdir.mkdir()

    def run(*args: str | os.PathLike[str], env: Mapping[str, str] | None = None, timeout: float = SUBPROCESS_TIMEOUT) -> Completed:
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *map(str, args)]
        return subprocess.run(command, cwd=workdir, env=child_env(pycache_dir, env), capture_output=True, text=True, timeout=timeout, check=False)

    return run


def start_mock_server(*args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `python -m conformance.mock ARGS` with piped output (the caller stops it)."""
    command = [sys.executable, "-m", "conformance.mock", *args]
    child = {key: value for key, value in os.environ.items() if not key.startswith("KATAPULT_")} | dict(env or {})
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child)


def first_line(process: subprocess.Popen[str], timeout: float = SERVER_START_TIMEOUT) -> str:
    """The first line the process prints on stdout; fails the test, with its stderr, if none comes."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            if line:
                return line.rstrip("\n")
            break
    process.kill()
    _, stderr = process.communicate(timeout=10)
    pytest.fail(f"the mock server printed no base URL (exit {process.returncode}): {stderr.strip()}", pytrace=False)


def stop(process: subprocess.Popen[str]) -> None:
    """Terminate a child process and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture
def serve_mock() -> Iterator[Callable[..., ServedMock]]:
    """`serve_mock(*args)`: serve the mock (e.g. `"--mutant", name`) on a free port; every server is stopped at teardown."""
    started: list[subprocess.Popen[str]] = []

    def serve(*args: str) -> ServedMock:
        process = start_mock_server("--port", "0", *args)
        started.append(process)
        return ServedMock(first_line(process), process)

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
    """The in-process target the suite uses by default: respx routes requests to `reference_mock`."""
    target = mock_target(reference_mock, virtual_clock)
    yield target
    target.close()
