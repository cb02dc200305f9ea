"""Helpers for the project's own tests, imported by name (`from helpers import ...`); the fixtures are conftest.py's."""
from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from conformance.setup.paths import data_path
from conformance.tools.mutation import child_environment

MOCK_TARGET_YAML = data_path("fixtures", "mock-target.yaml")
SUBPROCESS_TIMEOUT = 300.0
SERVER_START_TIMEOUT = 20.0

Completed = subprocess.CompletedProcess[str]
RunPytest = Callable[..., Completed]
RunSuite = Callable[..., pytest.RunResult]


@dataclass
class ServedMock:
    """A `python -m conformance.mock` child process and the base URL it printed."""

    base_url: str
    process: subprocess.Popen[str]

    @property
    def port(self) -> int:
        """The port it listens on."""
        port = httpx.URL(self.base_url).port
        assert port is not None
        return port



def without_settings(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without KATAPULT_* settings (the caller's own must never leak into a child) nor xdist's worker variables, plus `env`."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("KATAPULT_", "PYTEST_XDIST_"))} | dict(env or {})



def child_env(pycache: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child pytest, as the mutants command gives its runs (no KATAPULT_*, PYTEST_ADDOPTS or xdist worker
    variables; bytecode written where Python keeps it; Hypothesis's storage shared, under `pycache` unless the session set one), plus `env`."""
    return child_environment(pycache) | dict(env or {})



@dataclass(frozen=True)
class PytestRunner:
    """Runs `python -m pytest -p no:cacheprovider ARGS` in a child process from `workdir`, as a user does.

    The child sees our environment minus KATAPULT_* (so the caller's settings never leak in), plus `env`.
    """

    workdir: Path
    pycache: Path

    def __call__(self, *args: str | os.PathLike[str], env: Mapping[str, str] | None = None, timeout: float = SUBPROCESS_TIMEOUT) -> Completed:
        """Run pytest to completion and return its exit code and output."""
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *map(str, args)]
        environ = child_env(self.pycache, env)
        return subprocess.run(command, cwd=self.workdir, env=environ, capture_output=True, text=True, timeout=timeout, check=False)



def start_mock_server(*args: str, stderr: IO[str], env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `python -m conformance.mock ARGS` with stdout piped; stderr goes to a file (a pipe nobody reads could fill)."""
    command = [sys.executable, "-m", "conformance.mock", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=without_settings(env))



def first_line(process: subprocess.Popen[str], timeout: float = SERVER_START_TIMEOUT) -> str | None:
    """The first line the process prints on stdout, or None if it exits or stays silent for `timeout` seconds."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            return line.rstrip("\n") if line else None
    return None



def stop(process: subprocess.Popen[str]) -> None:
    """Terminate a child process and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


def unpadded(text: str) -> str:
    """`text` with the terminal summary's column padding squeezed to one space: assertions read the verdict, not the layout."""
    return re.sub(r"(?<=\S) {2,}(?=\S)", " ", text)


def sampled(values: Sequence[Any], every: int, ids: Sequence[str] | None = None) -> list[Any]:
    """`values` as parameters, every `every`-th one (the first included) run by CI and the rest marked nightly.

    CI has 5 minutes on 2 cores; `pytest -m nightly` (or `pytest -m ''`) runs the whole breadth. The sample is fixed, so a
    run is deterministic: which values it covers is in the test's ids.
    """
    names = list(ids) if ids is not None else [None] * len(values)
    return [pytest.param(value, id=name, marks=() if index % every == 0 else (pytest.mark.nightly,))
            for index, (value, name) in enumerate(zip(values, names, strict=True))]


# Plugin source for a child run (needs `state["spent"]`, `real_allocate` and READ_IP_PATH): after its first 200, allocate_ip
# spends the token's window down to its last request, so the test's next paced request waits for the window's end.
SPEND_WINDOW_ON_FIRST_ALLOCATION = '''
def allocate(target, credential, *args, **kwargs):
    response = real_allocate(target, credential, *args, **kwargs)
    if response.status_code == 200 and not state["spent"]:
        state["spent"] = True
        read = {"ip_address[id]": "ip_mockFree000000002"}
        while int(target.send("GET", READ_IP_PATH, credential=credential, params=read, paced=False).headers["X-RateLimit-Remaining"]) > 1:
            pass
        target.send("GET", READ_IP_PATH, credential=credential, params=read)
    return response
'''


def run_output(result: pytest.RunResult) -> str:
    """What a run_suite run printed, stdout then stderr on lines of their own (as a child's two streams read together)."""
    return result.stdout.str() + "\n" + result.stderr.str()
