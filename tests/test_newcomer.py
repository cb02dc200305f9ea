"""A newcomer's first steps for real (nightly: each makes a virtualenv and installs from PyPI): the README's first block, a regular install."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import first_line, stop, without_settings
from test_readme_commands import README, shell_blocks

ROOT = Path(__file__).resolve().parent.parent
INSTALL_TIMEOUT = 900


def sh(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; its exit code and output are the caller's to judge."""
    return subprocess.run(command, cwd=cwd, env=without_settings(env), capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.nightly
def test_readme_first_block_on_a_fresh_clone(tmp_path: Path) -> None:
    """The first block, pasted into bash in a fresh clone, runs to the end: install, the suite on the mock, the project's tests."""
    clone = tmp_path / "clone"
    assert sh(["git", "clone", "--quiet", str(ROOT), str(clone)], tmp_path).returncode == 0
    block = shell_blocks(README.read_text(encoding="utf-8"))[0]
    # The project's tests as pasted, narrowed to a few of them (all of them are CI's job, minutes long); the other lines as pasted.
    script = re.sub(r"^pytest\b", "pytest tests/test_cli.py tests/test_readme_commands.py", block, flags=re.MULTILINE)
    assert script != block, "the first block runs no `pytest`"
    done = sh(["bash", "-euo", "pipefail", "-c", script], clone, timeout=INSTALL_TIMEOUT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "passed" in done.stdout


@pytest.mark.nightly
@pytest.mark.skipif(os.name != "posix", reason="a POSIX virtualenv layout")
def test_installed_user_inits_and_runs_live_on_two_workers(tmp_path: Path) -> None:
    """A regular install used from another directory: init --mock, the served mock, `run -n 2` passes and leaves every fixture IP as found."""
    venv, home = tmp_path / "venv", tmp_path / "newcomer"
    home.mkdir()
    assert sh([sys.executable, "-m", "venv", str(venv)], tmp_path).returncode == 0
    installed = sh([str(venv / "bin" / "pip"), "install", "--quiet", str(ROOT)], tmp_path, timeout=INSTALL_TIMEOUT)
    assert installed.returncode == 0, installed.stderr[-3000:]
    command = str(venv / "bin" / "katapult-conformance")
    init = sh([command, "init", "--mock"], home)
    assert init.returncode == 0 and (home / "mock-target.yaml").is_file(), init.stdout + init.stderr
    with (tmp_path / "mock.stderr").open("w", encoding="utf-8") as stderr:
        server = subprocess.Popen([command, "mock", "--port", "0", "--permitted", "1000000"], stdout=subprocess.PIPE, stderr=stderr,
                                  text=True, env=without_settings())
    try:
        url = first_line(server)
        assert url is not None, (tmp_path / "mock.stderr").read_text(encoding="utf-8")
        target = ["--target-url", url, "--target-fixtures", "mock-target.yaml"]
        before = sh([command, "doctor", *target], home)
        assert before.returncode == 0, before.stdout + before.stderr
        ids = sh([command, "run", "--co", "-q", *target], home)
        assert "conformance/test_scenarios.py::test_scenario[body-not-utf8]" in ids.stdout.splitlines(), ids.stdout[-2000:]
        done = sh([command, "run", "-n", "2", "-k", "not test_rate_limit_reached", "--max-rate", "2000", *target], home)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        assert "created: 2/2 workers" in done.stdout and "left the target changed" not in done.stdout
        after = sh([command, "doctor", *target], home)
        starts = [line for line in before.stdout.splitlines() if " starts " in line]
        assert starts and starts == [line for line in after.stdout.splitlines() if " starts " in line]
    finally:
        stop(server)
