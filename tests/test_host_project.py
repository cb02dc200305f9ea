"""The installed plugin is a good neighbour: a host project's own pytest runs behave as if it were not there."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import Completed, PytestRunner, RunPytest, RunSuite, run_output

PRODUCTION = "https://api.katapult.io/core/v1"
# Settings that would each stop a run of the suite with exit 4: a host run must not even look at them.
SUITE_ENV = {"KATAPULT_TARGET_URL": PRODUCTION, "KATAPULT_CONFORMANCE_PROFILE": "no-such-profile", "KATAPULT_MAX_RATE": "fast",
             "KATAPULT_CONFORMANCE_BASELINE": "missing-baseline.yaml"}
# The host's hypothesis test records the settings it ran with; the project tests compare them with a run without
# the plugin, because hypothesis' own defaults depend on the environment (a `CI` variable selects its "ci" profile).
HOST_TESTS = '''
import json
from pathlib import Path

from hypothesis import given, settings, strategies as st


def test_host_plain():
    assert 1 + 1 == 2


@given(st.integers())
def test_host_hypothesis_keeps_its_defaults(number):
    current = settings()
    seen = {"profile": settings.get_current_profile_name(), "max_examples": current.max_examples,
            "deadline": repr(current.deadline), "derandomize": current.derandomize,
            "suppress_health_check": sorted(check.name for check in current.suppress_health_check),
            "database": type(current.database).__name__}
    Path("host_settings.json").write_text(json.dumps(seen, sort_keys=True), encoding="utf-8")
'''
HOSTILE_INI = """[pytest]
python_files = *_test.py
python_functions = check_*
python_classes = Check
testpaths = elsewhere
"""


def host_project(workdir: Path, ini: str | None = None) -> None:
    """A host project's test file (and pytest.ini) in the runner's working directory."""
    (workdir / "test_host.py").write_text(HOST_TESTS, encoding="utf-8")
    if ini is not None:
        (workdir / "pytest.ini").write_text(ini, encoding="utf-8")


def host_settings(workdir: Path) -> str:
    """The hypothesis settings the host's test recorded in its last run from `workdir`."""
    return (workdir / "host_settings.json").read_text(encoding="utf-8")


def summary(done: Completed) -> str:
    """The final counts line without its timing, e.g. "2 passed"."""
    last = done.stdout.strip().splitlines()[-1]
    return re.sub(r" in [\d.]+s.*$", "", last.strip("= "))


def collected(done: pytest.RunResult) -> list[str]:
    """The node ids `--co -q` listed."""
    return [line for line in done.outlines if "::" in line]


@dataclass(frozen=True)
class HostRun:
    """What the host's tests did in a run of their own: the counts line and the hypothesis settings they recorded."""

    summary: str
    settings: str


@pytest.fixture(scope="module")
def without_the_plugin(tmp_path_factory: pytest.TempPathFactory, pycache_dir: Path) -> HostRun:
    """The host project run in a fresh process with the plugin blocked (KATAPULT_* set): what the host sees when it is not there.

    A child process, like the run it is compared with: hypothesis' defaults are a fresh process's, untouched by this session.
    """
    workdir = tmp_path_factory.mktemp("host-alone")
    host_project(workdir)
    alone = PytestRunner(workdir, pycache_dir)("test_host.py", "-rA", "-p", "no:katapult_conformance", env=SUITE_ENV)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    return HostRun(summary(alone), host_settings(workdir))


def test_host_run_behaves_as_without_the_plugin(run_pytest: RunPytest, tmp_path: Path, without_the_plugin: HostRun) -> None:
    """With KATAPULT_* set (production URL included), a host run passes, keeps hypothesis' defaults and prints nothing of the suite."""
    # A child process: the installed entry point loaded as a user's run loads it, import-time effects included.
    host_project(tmp_path / "workdir")
    with_plugin = run_pytest("test_host.py", "-rA", env=SUITE_ENV)
    assert with_plugin.returncode == 0, with_plugin.stdout + with_plugin.stderr
    # pytest's own "plugins:" header line names every installed plugin; nothing else may mention the suite.
    mentions = [line for line in (with_plugin.stdout + with_plugin.stderr).splitlines() if "katapult" in line.lower()]
    assert [line for line in mentions if not line.startswith("plugins: ")] == []
    assert summary(with_plugin) == without_the_plugin.summary == "2 passed"
    assert host_settings(tmp_path / "workdir") == without_the_plugin.settings


def test_host_hypothesis_tests_keep_defaults_beside_the_suite(run_suite: RunSuite, pytester: pytest.Pytester,
                                                              without_the_plugin: HostRun) -> None:
    """In one run with the suite's generated tests, the host's hypothesis test still has hypothesis' defaults."""
    # In process: what is checked is the suite's per-test settings not leaking into the host's test of the same run; how
    # many examples the suite's property draws is not (it is still far from hypothesis' default, so a leak would show).
    host_project(pytester.path)
    done = run_suite("test_host.py", "--pyargs", "conformance", "-k", "host_ or test_every_response_conforms", "-q",
                     "--conformance-max-examples", "5")
    assert done.ret == 0, done.stdout.str()[-3000:] + done.stderr.str()
    done.assert_outcomes(passed=3)
    assert host_settings(pytester.path) == without_the_plugin.settings


def test_host_configuration_does_not_hide_the_suite(run_suite: RunSuite, pytester: pytest.Pytester) -> None:
    """A host pytest.ini with python_files, python_functions, python_classes and testpaths of its own still collects the whole suite."""
    plain = run_suite("--pyargs", "conformance", "--co", "-q")
    assert plain.ret == 0, run_output(plain)
    host_project(pytester.path, HOSTILE_INI)
    hosted = run_suite("--pyargs", "conformance", "--co", "-q", "-p", "no:doctest")
    assert hosted.ret == 0, run_output(hosted)
    assert collected(hosted) == collected(plain)
    assert any("test_scenarios.py::test_scenario[missing-token]" in line for line in collected(hosted))
    assert any("test_generated.py::test_stateful_allocation" in line for line in collected(hosted))


def test_a_test_using_the_suites_fixtures_opts_in(run_suite: RunSuite, pytester: pytest.Pytester) -> None:
    """A host test that asks for a suite fixture gets the suite set up (settings shown, production still refused)."""
    # In process, the suite's fixtures come from the installed entry point all the same: the host names nothing else.
    pytester.makepyfile(test_extension="def test_extension(target_fixtures):\n    assert target_fixtures.network_interface_id\n")
    done = run_suite("test_extension.py")
    assert done.ret == 0, run_output(done)
    assert "katapult-conformance target: embedded reference mock (in-process) [default]" in done.stdout.str()
    refused = run_suite("test_extension.py", env={"KATAPULT_TARGET_URL": PRODUCTION, "KATAPULT_TARGET_FIXTURES": "x.yaml"})
    assert refused.ret == 4
    assert "refusing to run against Katapult's production API" in refused.stderr.str()
