"""--require-complete: a run that leaves any promise not run or not provoked fails."""
from __future__ import annotations

from helpers import RunPytest

SELECTION = ("--pyargs", "conformance", "-k", "test_scenario and missing-token", "-q")


def test_incomplete_run_fails_only_when_completeness_is_required(run_pytest: RunPytest) -> None:
    """One scenario passes: exit 0 as usual; with the switch (flag or env) the run fails naming each promise left unjudged."""
    plain = run_pytest(*SELECTION)
    assert plain.returncode == 0, plain.stdout[-2000:] + plain.stderr
    required = run_pytest(*SELECTION, "--require-complete")
    assert required.returncode == 1, required.stdout[-2000:] + required.stderr
    assert "not judged (--require-complete)" in required.stdout and "403 invalid_api_token not run" in required.stdout
    assert "400 missing_api_token' is" not in required.stdout
    from_env = run_pytest(*SELECTION, env={"KATAPULT_CONFORMANCE_REQUIRE_COMPLETE": "1"})
    assert from_env.returncode == 1, from_env.stdout[-2000:]
