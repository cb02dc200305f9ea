"""--require-complete: a run that leaves any promise not run or not provoked fails."""
from __future__ import annotations

from helpers import RunSuite

SELECTION = ("--pyargs", "conformance", "-k", "test_scenario and missing-token", "-q")


def test_incomplete_run_fails_only_when_completeness_is_required(run_suite: RunSuite) -> None:
    """One scenario passes: exit 0 as usual; with the switch (flag or env) the run fails naming each promise left unjudged."""
    plain = run_suite(*SELECTION)
    assert plain.ret == 0, plain.stdout.str()[-2000:] + plain.stderr.str()
    required = run_suite(*SELECTION, "--require-complete")
    stdout = required.stdout.str()
    assert required.ret == 1, stdout[-2000:] + required.stderr.str()
    assert "not judged (--require-complete)" in stdout and "403 invalid_api_token not run" in stdout
    assert "400 missing_api_token' is" not in stdout
    from_env = run_suite(*SELECTION, env={"KATAPULT_CONFORMANCE_REQUIRE_COMPLETE": "1"})
    assert from_env.ret == 1, from_env.stdout.str()[-2000:]
