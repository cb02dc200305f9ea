"""`katapult-conformance`: each subcommand exists, has --help, and does what the README says."""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from conftest import child_env

from conformance.tools.cli import COMMANDS, main

SUBCOMMANDS = ("init", "run", "doctor", "mock", "replay", "drift", "mutants")


def test_console_script_is_installed() -> None:
    """pip installs one command, `katapult-conformance`; the mock, drift and mutants are its subcommands, not scripts of their own."""
    scripts = {entry.name: entry.value for entry in entry_points(group="console_scripts") if entry.value.startswith("conformance.")}
    assert scripts == {"katapult-conformance": "conformance.tools.cli:main"}


def test_top_level_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """--help names each command; no command is a usage error (exit 2)."""
    assert main(["--help"]) == 0
    shown = capsys.readouterr().out
    assert tuple(COMMANDS) == SUBCOMMANDS
    assert all(f"  {name} " in shown for name in SUBCOMMANDS)
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`katapult-conformance NAME --help` prints usage and exits 0."""
    try:
        code = main([name, "--help"])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    assert code == 0
    assert "usage:" in capsys.readouterr().out


def test_run_help_lists_the_suite_options(capsys: pytest.CaptureFixture[str]) -> None:
    """`run --help` shows the suite's options and their environment variables."""
    main(["run", "--help"])
    shown = capsys.readouterr().out
    assert "--target-url" in shown and "KATAPULT_TARGET_URL" in shown and "--require-complete" in shown


def test_doctor_without_the_preflight_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """Until conformance.tools.doctor exists, `doctor` says in one sentence that this version has no preflight, exit 2."""
    try:
        import conformance.tools.doctor  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        pytest.skip("this version has the preflight")
    assert main(["doctor"]) == 2
    assert capsys.readouterr().err.strip() == (
        "katapult-conformance doctor: the preflight is not available in this version; upgrade katapult-conformance")


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m conformance.tools.cli ARGS` in a child process, from an empty directory."""
    return subprocess.run([sys.executable, "-m", "conformance.tools.cli", *args], cwd=tmp_path, env=child_env(tmp_path / "pycache"),
                          capture_output=True, text=True, timeout=300, check=False)


def test_run_passes_pytest_options_through(tmp_path: Path) -> None:
    """`run --co -q` collects the suite; a suite option is validated like under pytest (production refused, exit 4)."""
    done = cli(tmp_path, "run", "--co", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_scenarios.py::test_scenario[missing-token]" in done.stdout
    refused = cli(tmp_path, "run", "--co", "--target-url", "https://api.katapult.io/core/v1", "--target-fixtures", "x.yaml")
    assert refused.returncode == 4
    assert "refusing to run against Katapult's production API" in refused.stderr


def test_mock_list_mutants(capsys: pytest.CaptureFixture[str]) -> None:
    """`mock` is the mock's own command line."""
    assert main(["mock", "--list-mutants"]) == 0
    assert "errors-unwrapped" in capsys.readouterr().out
