"""`katapult-conformance`: each subcommand exists, has --help, and does what the README says."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from helpers import child_env

from conformance.tools.cli import COMMANDS, main

SUBCOMMANDS = ("init", "run", "doctor", "mock", "replay", "drift", "mutants")


def test_console_script_is_installed() -> None:
    """pip installs one command, `katapult-conformance`; the mock, drift and mutants are its subcommands, not scripts of their own."""
    scripts = {entry.name: entry.value for entry in entry_points(group="console_scripts") if entry.value.startswith("conformance.")}
    assert scripts == {"katapult-conformance": "conformance.tools.cli:main"}


def test_top_level_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """--help names each command; no command or an unknown one is a usage error: one line, exit 4, as in every subcommand."""
    assert main(["--help"]) == 0
    shown = capsys.readouterr().out
    assert tuple(COMMANDS) == SUBCOMMANDS
    assert all(f"  {name} " in shown for name in SUBCOMMANDS)
    assert main([]) == 4
    capsys.readouterr()
    assert main(["frobnicate"]) == 4
    assert capsys.readouterr().err.strip().splitlines() == [
        "katapult-conformance: error: unknown command 'frobnicate'; choose one of " + ", ".join(SUBCOMMANDS)]


@pytest.mark.parametrize("name", [name for name in SUBCOMMANDS if name != "run"])
def test_every_subcommand_speaks_one_vocabulary(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Usage says `katapult-conformance NAME`, --help lists the exit codes, and an unknown option is one prefixed line and exit 4."""
    with pytest.raises(SystemExit) as helped:
        main([name, "--help"])
    assert helped.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: katapult-conformance {name} ") and "exit codes:\n  0  " in shown and "\n  4  " in shown
    with pytest.raises(SystemExit) as refused:
        main([name, "--no-such-option"])
    assert refused.value.code == 4
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"katapult-conformance {name}: error: ")
    assert error[0].endswith(f"; see `katapult-conformance {name} --help`")


def test_run_help_lists_options_defaults_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """`run --help` shows every suite option with its environment variable and default, and every exit code run can return."""
    assert main(["run", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "--target-url" in shown and "KATAPULT_TARGET_URL" in shown and "--require-complete" in shown
    assert "--max-requests" in shown and "(default 4000)" in shown and "(default: 4000)" not in shown  # said once
    assert [line.split()[0] for line in shown.split("exit codes:\n", 1)[1].splitlines()] == ["0", "1", "2", "4", "6"]


def test_doctor_takes_only_the_options_it_uses(capsys: pytest.CaptureFixture[str]) -> None:
    """A run-only option (a report, a baseline) given to doctor is refused, not silently ignored."""
    with pytest.raises(SystemExit) as refused:
        main(["doctor", "--conformance-report", "x.md"])
    assert refused.value.code == 4
    assert "unrecognized arguments: --conformance-report" in capsys.readouterr().err


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`katapult-conformance NAME --help` prints usage and exits 0."""
    try:
        code = main([name, "--help"])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    assert code == 0
    assert "usage:" in capsys.readouterr().out


def cli(tmp_path: Path, pycache_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m conformance.tools.cli ARGS` in a child process, from an empty directory (the session's bytecode and Hypothesis caches)."""
    return subprocess.run([sys.executable, "-m", "conformance.tools.cli", *args], cwd=tmp_path, env=child_env(pycache_dir),
                          capture_output=True, text=True, timeout=300, check=False)


def test_run_passes_pytest_options_through(tmp_path: Path, pycache_dir: Path) -> None:
    """`run --co -q` collects the suite; a suite option is validated like under pytest (production refused, exit 4)."""
    done = cli(tmp_path, pycache_dir, "run", "--co", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_scenarios.py::test_scenario[missing-token]" in done.stdout
    refused = cli(tmp_path, pycache_dir, "run", "--co", "--target-url", "https://api.katapult.io/core/v1", "--target-fixtures", "x.yaml")
    assert refused.returncode == 4
    assert "refusing to run against Katapult's production API" in refused.stderr


def test_mock_list_mutants(capsys: pytest.CaptureFixture[str]) -> None:
    """`mock` is the mock's own command line."""
    assert main(["mock", "--list-mutants"]) == 0
    assert "errors-unwrapped" in capsys.readouterr().out


def test_help_piped_into_a_reader_that_stops_ends_without_a_traceback(tmp_path: Path, pycache_dir: Path) -> None:
    """`katapult-conformance run --help | head` when head has gone: no traceback, just the end."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: every write fails with a broken pipe
    try:
        done = subprocess.run([sys.executable, "-m", "conformance.tools.cli", "run", "--help"], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, cwd=tmp_path, env=child_env(pycache_dir), timeout=60, check=False)
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 141  # as a shell reports a command whose reader stopped, not 1 (a promise fails)
