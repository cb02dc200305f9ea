"""`katapult-conformance run` is `pytest --pyargs conformance` (same cases, no warning, signals reach it); `init` writes the starter files."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from helpers import RunSuite, ServedMock, child_env
from test_safety import holder, interrupted_mid_allocation

from conformance.setup.fixtures import TargetFixtures, load_target_fixtures
from conformance.setup.paths import data_path
from conformance.tools import cli

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
posix_only = pytest.mark.skipif(os.name != "posix", reason="run execs pytest on POSIX only")


def test_run_becomes_pytest_on_this_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    """`run ARGS` replaces this process with this environment's `pytest --pyargs conformance ARGS`: nothing of the suite is loaded before pytest."""
    if os.name != "posix":
        pytest.skip("run execs pytest on POSIX only")
    called: list[tuple[str, list[str]]] = []

    def execv(path: str, argv: list[str]) -> None:
        called.append((path, list(argv)))
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", execv)
    monkeypatch.setattr(sys, "argv", [str(BIN / "katapult-conformance"), "run"])
    with pytest.raises(SystemExit):
        cli.main(["run", "-k", "test_scenario", "--target-url", "http://127.0.0.1:9/core/v1"])
    script = str(BIN / "pytest")
    assert called == [(script, [script, "--pyargs", "conformance", "-k", "test_scenario", "--target-url=http://127.0.0.1:9/core/v1"])]
    # `python -m conformance.tools.cli run` has no script of its own to stand beside: pytest as a module, the working directory off sys.path.
    assert cli.pytest_command(["-q"], launched_as=cli.__file__) == [sys.executable, "-P", "-m", "pytest", "--pyargs", "conformance", "-q"]


def generated_section(output: str) -> list[str]:
    """The "generated cases by status" lines and the final counts (without the time)."""
    lines = output.split("generated cases by status", 1)[1].strip().splitlines()[1:]
    return [re.sub(r" in [\d.]+s.*$", "", line.strip("= ")) for line in lines]


@posix_only
def test_run_and_pytest_run_the_same_cases_without_a_warning(tmp_path: Path, pycache_dir: Path, run_suite: RunSuite) -> None:
    """The console script, from a directory outside the checkout, runs the cases `pytest --pyargs conformance` runs: same cases per
    test, same counts, no warning (the default breadth: a warning may come of generating many cases)."""
    done = subprocess.run([str(BIN / "katapult-conformance"), "run", "-p", "no:cacheprovider", "-p", "no:xdist", "-q"], cwd=tmp_path,
                          env=child_env(pycache_dir), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    run = done.stdout + done.stderr
    # What it is compared with need not be a process of its own: the same pytest run, in this process from an empty directory.
    reference = run_suite("--pyargs", "conformance", "-p", "no:xdist", "-q")
    assert reference.ret == 0, reference.stdout.str()[-3000:]
    assert "PytestAssertRewriteWarning" not in run
    assert generated_section(run) == generated_section(reference.stdout.str())
    assert len(generated_section(run)) >= 9 and "warning" not in generated_section(run)[-1]


@posix_only
def test_sigterm_through_run_still_gives_back_the_allocation(served_mock: ServedMock, mock_target_fixtures: TargetFixtures, tmp_path: Path,
                                                             pycache_dir: Path) -> None:
    """A CI runner's SIGTERM to `katapult-conformance run` mid-allocation reaches pytest: interrupted (exit 2), the IP free again."""
    command = [str(BIN / "katapult-conformance"), "run", "-p", "no:cacheprovider", "-p", "slow_allocation",
               "-k", "test_allocate_free_ip and not address", "--target-url", served_mock.base_url,
               "--target-fixtures", str(mock_target_fixtures.source), "--max-rate", "1000"]
    code, output = interrupted_mid_allocation(command, signal.SIGTERM, served_mock, mock_target_fixtures, tmp_path, pycache_dir)
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert holder(served_mock, mock_target_fixtures, mock_target_fixtures.allocatable_ip(0)) is None, output


def test_init_writes_the_example_and_the_next_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`init DIR` writes DIR/staging.yaml (the shipped example, made usable by the tokens it names) and says what to do next."""
    assert cli.main(["init", str(tmp_path / "ci")]) == 0
    written = tmp_path / "ci" / "staging.yaml"
    assert written.read_text(encoding="utf-8") == data_path("fixtures", "staging.example.yaml").read_text(encoding="utf-8")
    shown = capsys.readouterr().out
    assert f"wrote {written}" in shown
    assert "export KATAPULT_API_TOKEN=" in shown and "katapult-conformance run --target-url" in shown and f"--target-fixtures {written}" in shown
    fixtures = load_target_fixtures(written, environ={"KATAPULT_API_TOKEN": "t"})
    assert fixtures.network_interface_id and fixtures.allocatable


def test_init_never_overwrites_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing file is kept, with one line naming it and --force (exit 4); --force replaces it."""
    mine = tmp_path / "staging.yaml"
    mine.write_text("credentials: {}\n", encoding="utf-8")
    assert cli.main(["init", str(tmp_path)]) == 4
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and str(mine) in error[0] and "--force" in error[0]
    assert mine.read_text(encoding="utf-8") == "credentials: {}\n"
    assert cli.main(["init", str(tmp_path), "--force"]) == 0
    assert mine.read_text(encoding="utf-8") == data_path("fixtures", "staging.example.yaml").read_text(encoding="utf-8")


def test_init_mock_writes_the_served_mocks_fixtures(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`init --mock` (default directory: the working one) writes the fixtures that go with `katapult-conformance mock`, and how to run them."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["init", "--mock"]) == 0
    written = tmp_path / "mock-target.yaml"
    assert written.read_text(encoding="utf-8") == data_path("fixtures", "mock-target.yaml").read_text(encoding="utf-8")
    assert load_target_fixtures(written, environ={}).credential("valid")
    shown = capsys.readouterr().out
    assert "katapult-conformance mock --port 8080" in shown
    assert "--target-url http://127.0.0.1:8080/core/v1 --target-fixtures mock-target.yaml" in shown


def test_no_message_points_at_a_repository_path() -> None:
    """An installed user has no fixtures/ folder: the suite's code never tells them to look there (it names `katapult-conformance init`)."""
    sources = list((ROOT / "conformance").rglob("*.py"))
    pointing = [f"{path.relative_to(ROOT)}: {line.strip()}" for path in sources for line in path.read_text(encoding="utf-8").splitlines()
                if re.search(r"(see|cp|copy) [`'\"]?fixtures/", line)]
    assert pointing == []
    assert not [path for path in sources if "staging.example.yaml" in path.read_text(encoding="utf-8") and path.name != "cli.py"]


def test_pytest_xdist_comes_with_a_plain_install() -> None:
    """`-n 2` works after the README's `pip install .`: pytest-xdist is a dependency, not only a test extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(re.match(r"pytest-xdist\b", requirement) for requirement in project["dependencies"])


def test_suite_option_values_are_joined_so_pytest_keeps_its_rootdir() -> None:
    """`run` passes `--target-fixtures PATH` as `--target-fixtures=PATH`: pytest, choosing its rootdir before the plugin's options
    exist, would take a separate PATH for a path to test, and show every id relative to its folder (`../conformance/...`)."""
    from conformance.tools.cli import joined_values

    given = ["--target-fixtures", "/elsewhere/x.yaml", "-k", "body-not-utf8", "--require-complete", "--conformance-report", "r.md",
             "--max-rate=4", "-n", "2"]
    assert joined_values(given) == ["--target-fixtures=/elsewhere/x.yaml", "-k", "body-not-utf8", "--require-complete",
                                    "--conformance-report=r.md", "--max-rate=4", "-n", "2"]
