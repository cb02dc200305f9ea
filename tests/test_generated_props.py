"""The generated property tests on their own: they pass on the faithful mock in every profile, catch the broken
behaviours issue 4 names within the ci profile, and the ci profile sends the same requests twice."""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import SUBPROCESS_TIMEOUT, child_env

pytest_plugins = ["pytester"]

GENERATED = str(Path(__file__).resolve().parent.parent / "conformance" / "test_generated.py")
# The property that finds each deviation, and the promise its finding is charged to.
CAUGHT_BY_GENERATION = {
    "500-on-non-ascii-id": ("test_every_response_conforms", "no server errors"),
    "200-missing-mac-address": ("test_every_response_conforms", "200 shape"),
    "exclusivity-id-wins": ("test_exclusivity_two_values_are_ambiguous", "mutual exclusivity"),
    "arguments-before-authentication": ("test_auth_before_arguments", "order of checks"),
    "allocates-to-other-interface": ("test_stateful_allocation", "200 semantics"),
    "ambiguous-still-allocates": ("test_exclusivity_two_values_are_ambiguous", "no side effects"),
    # The model sees the refused IP move: a side effect of the 422, not a fault of the allocation it models.
    "422-still-allocates": ("test_stateful_allocation", "no side effects"),
}


@pytest.mark.usefixtures("suite_imports_warm")
@pytest.mark.parametrize("profile", ["ci", "dev", "thorough"])
def test_faithful_mock_passes_every_profile(profile: str, pytester: pytest.Pytester) -> None:
    """No false alarm on the faithful mock, whatever the profile (dev/thorough resized to stay quick)."""
    resize = [] if profile == "ci" else ["--conformance-max-examples", "15"]
    result = pytester.runpytest_inprocess(GENERATED, "-p", "no:cacheprovider", "-q", "--conformance-profile", profile, *resize)
    assert result.ret == 0, "\n".join(result.outlines[-40:])
    result.stdout.fnmatch_lines(["test_every_response_conforms: * cases;*"])


@pytest.mark.usefixtures("suite_imports_warm")
@pytest.mark.parametrize("mutant", sorted(CAUGHT_BY_GENERATION))
def test_generated_tests_catch_mutant(mutant: str, pytester: pytest.Pytester) -> None:
    """Each broken behaviour is found by the property aimed at it, in the ci profile, and charged to the promise it breaks."""
    test, promise = CAUGHT_BY_GENERATION[mutant]
    # Only that property runs: it is the one that must find it (its finding names it), at the ci profile's examples.
    result = pytester.runpytest_inprocess(GENERATED, "-p", "no:cacheprovider", "-q", "-rf", "--mock-mutant", mutant, "-k", test)
    output = result.stdout.str()
    assert result.ret == 1, output[-3000:]
    assert re.search(rf"^fails +{re.escape(promise)}: ", output, re.MULTILINE), output[-3000:]
    findings = [line for line in result.outlines if line.startswith(f"finding: {promise} ·")]
    assert any(test in line for line in findings), output[-3000:]


@dataclass(frozen=True)
class CiRun:
    """One child run of the generated tests in the ci profile: its exit code, the tests it failed and its requests."""

    returncode: int
    failed: list[str]
    requests: list[str]


@pytest.fixture(scope="module")
def two_ci_runs(pycache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[CiRun, CiRun]:
    """The ci profile run twice against the same mutant, each in a process of its own (so with its own hash seed)."""
    # One mutant for both checks: every property runs, the one it breaks finds it and shrinks, and the others pass;
    # sending the same requests twice then covers the failing example's search and shrinking too.
    logs = tmp_path_factory.mktemp("ci-twice")
    # The two processes run side by side (neither reads the other's files): the pair costs one run's wall time when a core
    # is free, as at the end of the suite, where this fixture would otherwise be the longest single setup.
    started: list[tuple[subprocess.Popen[str], Path]] = []
    runs = []
    try:
        for name in ("first", "second"):
            log, workdir = logs / f"{name}.log", logs / name
            workdir.mkdir()
            command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", GENERATED, "-q", "-rf", "--mock-mutant",
                       "exclusivity-address-wins", "--request-log", str(log)]
            started.append((subprocess.Popen(command, cwd=workdir, env=child_env(pycache_dir), stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL, text=True), log))
        for process, log in started:
            stdout, _ = process.communicate(timeout=SUBPROCESS_TIMEOUT)
            failed = sorted(line.split(" - ")[0] for line in stdout.splitlines() if line.startswith("FAILED"))
            # Each line starts with its time and ends with the response's X-Request-Id, which differ between runs by design.
            requests = [line.split(" ", 1)[1].rsplit(" ", 1)[0] for line in log.read_text(encoding="utf-8").splitlines()]
            runs.append(CiRun(process.returncode, failed, requests))
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.kill()
                process.wait()
    return runs[0], runs[1]


def test_ci_profile_sends_the_same_requests_twice(two_ci_runs: tuple[CiRun, CiRun]) -> None:
    """Two ci runs on the same target write identical request logs (the per-run nonce normalised)."""
    first, second = two_ci_runs
    assert len(first.requests) > 1000
    assert first.requests == second.requests


def test_ci_profile_catches_the_same_way_twice(two_ci_runs: tuple[CiRun, CiRun]) -> None:
    """A mutant's failures are the same tests in two ci runs."""
    first, second = two_ci_runs
    assert first.returncode == second.returncode == 1
    assert first.failed == second.failed and first.failed


@pytest.mark.usefixtures("suite_imports_warm")
def test_the_install_does_not_change_what_is_generated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hypothesis mixes in the constants of local modules: the suite's own in a checkout or editable install, none from a wheel.
    The suite draws without that pool, so both send the same requests."""
    from hypothesis.internal.conjecture import providers
    from hypothesis.internal.constants_ast import Constants

    def requests() -> list[str]:
        log = pytester.path / "requests.log"
        # 5 examples per property already draw the local modules' constants when the pool is not emptied (a fixture's
        # file name within the first ~200 requests): more would only send more of the same.
        result = pytester.runpytest_inprocess(GENERATED, "-p", "no:cacheprovider", "-q", "--conformance-max-examples", "5",
                                              "--request-log", str(log))
        assert result.ret == 0, "\n".join(result.outlines[-30:])
        # Each line starts with its time and ends with the response's X-Request-Id, which differ between runs by design.
        return [line.split(" ", 1)[1].rsplit(" ", 1)[0] for line in log.read_text(encoding="utf-8").splitlines()]

    from_checkout = requests()
    # As from a wheel: no module of the suite (nor any other) counts as local, and hypothesis' pool starts empty again.
    monkeypatch.setattr(providers, "is_local_module_file", lambda path: False)
    monkeypatch.setattr(providers, "_local_constants", Constants())
    monkeypatch.setattr(providers, "_seen_modules", set())
    monkeypatch.setattr(providers, "_sys_modules_len", None)
    providers.CONSTANTS_CACHE.cache.clear()
    assert requests() == from_checkout
