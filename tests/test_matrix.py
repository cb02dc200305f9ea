"""The mutant matrix in process: the faithful mock clean, every mutant caught and charged to exactly the promises it breaks.

Each run is the suite as `katapult-conformance mutants` runs it (same arguments, JUnit and JSON report, judged by the
runner's own classify/attributed), but in this process with pytester: a child process would pay pytest's and the
plugins' start-up (~3 s) per run, which is most of a run at MATRIX_EXAMPLES. `tests/test_mutants.py` keeps the runs
that must be child processes: the live sample over loopback HTTP and the command line itself.
"""
from __future__ import annotations

import pytest

from conformance.mock.mutants import MUTANTS
from conformance.tools import mutation as runner

pytest_plugins = ["pytester"]

# Every mutant is caught and attributed the same at 10 examples per property as at the ci profile's 50
# (`katapult-conformance mutants` measures that), and the matrix stays a small share of CI.
MATRIX_EXAMPLES = 10
IN_PROCESS = [run for run in runner.plan(sorted(MUTANTS), live_size=0) if not run.live]


@pytest.mark.parametrize("run", IN_PROCESS, ids=[run.mutant for run in IN_PROCESS])
def test_in_process_run_comes_out_as_it_should(run: runner.Run, pytester: pytest.Pytester) -> None:
    """The faithful mock is clean; a mutant is caught, fails exactly the promises it breaks, and the exit code says the same."""
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_inprocess(*runner.pytest_arguments(run, junit, None, max_examples=MATRIX_EXAMPLES))
    failing = runner.failing_promises(junit.with_name("report.json"))
    summary = runner.parse_junit(junit) if junit.exists() else None
    status = runner.attributed(run, runner.classify(run, int(result.ret), summary), failing, full=True)
    assert status == run.expected, (f"{run.mutant}: {status}; failing promises {failing}, breaks {list(run.breaks)}, "
                                    f"failed tests {summary.failed[:3] if summary else None}\n" + "\n".join(result.outlines[-30:]))
