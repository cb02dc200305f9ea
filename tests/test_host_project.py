"""The installed plugin is a good neighbour: a host project's own pytest runs behave as if it were not there."""
from __future__ import annotations

import re
from pathlib import Path

from helpers import Completed, RunPytest

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


def collected(done: Completed) -> list[str]:
    """The node ids `--co -q` listed."""
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_host_run_behaves_as_without_the_plugin(run_pytest: RunPytest, tmp_path: Path) -> None:
    """With KATAPULT_* set (production URL included), a host run passes, keeps hypothesis' defaults and prints nothing of the suite."""
    host_project(tmp_path / "workdir")
    with_plugin = run_pytest("test_host.py", "-rA", env=SUITE_ENV)
    assert with_plugin.returncode == 0, with_plugin.stdout + with_plugin.stderr
    # pytest's own "plugins:" header line names every installed plugin; nothing else may mention the suite.
    mentions = [line for line in (with_plugin.stdout + with_plugin.stderr).splitlines() if "katapult" in line.lower()]
    assert [line for line in mentions if not line.startswith("plugins: ")] == []
    seen_with_plugin = host_settings(tmp_path / "workdir")
    without_plugin = run_pytest("test_host.py", "-rA", "-p", "no:katapult_conformance", env=SUITE_ENV)
    assert without_plugin.returncode == 0, without_plugin.stdout + without_plugin.stderr
    assert summary(with_plugin) == summary(without_plugin) == "2 passed"
    assert seen_with_plugin == host_settings(tmp_path / "workdir")


def test_host_hypothesis_tests_keep_defaults_beside_the_suite(run_pytest: RunPytest, tmp_path: Path) -> None:
    """In one run with the suite's generated tests, the host's hypothesis test still has hypothesis' defaults."""
    host_project(tmp_path / "workdir")
    done = run_pytest("test_host.py", "--pyargs", "conformance", "-k", "host_ or test_every_response_conforms", "-q")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert summary(done).startswith("3 passed"), done.stdout[-2000:]
    seen_beside_the_suite = host_settings(tmp_path / "workdir")
    alone = run_pytest("test_host.py", "-q", "-p", "no:katapult_conformance")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert seen_beside_the_suite == host_settings(tmp_path / "workdir")


def test_host_configuration_does_not_hide_the_suite(run_pytest: RunPytest, tmp_path: Path) -> None:
    """A host pytest.ini with python_files, python_functions, python_classes and testpaths of its own still collects the whole suite."""
    plain = run_pytest("--pyargs", "conformance", "--co", "-q")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    host_project(tmp_path / "workdir", HOSTILE_INI)
    hosted = run_pytest("--pyargs", "conformance", "--co", "-q", "-p", "no:doctest")
    assert hosted.returncode == 0, hosted.stdout + hosted.stderr
    assert collected(hosted) == collected(plain)
    assert any("test_scenarios.py::test_scenario[missing-token]" in line for line in collected(hosted))
    assert any("test_generated.py::test_stateful_allocation" in line for line in collected(hosted))


def test_a_test_using_the_suites_fixtures_opts_in(run_pytest: RunPytest, tmp_path: Path) -> None:
    """A host test that asks for a suite fixture gets the suite set up (settings shown, production still refused)."""
    (tmp_path / "workdir" / "test_extension.py").write_text(
        "def test_extension(target_fixtures):\n    assert target_fixtures.network_interface_id\n", encoding="utf-8")
    done = run_pytest("test_extension.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "katapult-conformance target: embedded reference mock (in-process) [default]" in done.stdout
    refused = run_pytest("test_extension.py", env={"KATAPULT_TARGET_URL": PRODUCTION, "KATAPULT_TARGET_FIXTURES": "x.yaml"})
    assert refused.returncode == 4
    assert "refusing to run against Katapult's production API" in refused.stderr
