"""The mutant matrix in process: the faithful mock clean, every mutant caught and charged to exactly the promises it breaks.

Each run is the suite as `katapult-conformance mutants` runs it (same arguments, JUnit and JSON report, judged by the
runner's own classify/attributed), but in this process with pytester: a child process would pay pytest's and the
plugins' start-up (~3 s) per run, which is most of a run at MATRIX_EXAMPLES. `tests/test_mutants.py` keeps the runs
that must be child processes: the live sample over loopback HTTP and the command line itself.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conformance.mock.mutants import MUTANTS
from conformance.mock.world import DEFAULT_WORLD
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


@pytest.mark.parametrize("run", IN_PROCESS, ids=[run.mutant for run in IN_PROCESS])
def test_in_process_run_comes_out_as_it_should(run: runner.Run, pytester: pytest.Pytester, small_token_world: Path) -> None:
    """The faithful mock is clean; a mutant is caught, fails exactly the promises it breaks, and the exit code says the same."""
    junit = pytester.path / "junit.xml"
    arguments = runner.pytest_arguments(run, junit, None, max_examples=MATRIX_EXAMPLES)
    result = pytester.runpytest_inprocess(*arguments, "--mock-world", str(small_token_world))
    failing = runner.failing_promises(junit.with_name("report.json"))
    summary = runner.parse_junit(junit) if junit.exists() else None
    status = runner.attributed(run, runner.classify(run, int(result.ret), summary), failing, full=True)
    assert status == run.expected, (f"{run.mutant}: {status}; failing promises {failing}, breaks {list(run.breaks)}, "
                                    f"failed tests {summary.failed[:3] if summary else None}\n" + "\n".join(result.outlines[-30:]))
    assert len(failing) <= MOST_PROMISES_PER_FAULT, f"{run.mutant}: one deviation fails {len(failing)} promises: {failing}"
