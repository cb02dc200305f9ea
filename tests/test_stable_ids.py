"""The suite's test ids are conformance/test_x.py::... whatever the working directory and options, so -k, --deselect and xdist's grouping hold."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conformance.gate.xdist import SUITE_NODE
from conformance.setup.paths import data_path

pytest_plugins = ("pytester",)

BODY_NOT_UTF8 = "conformance/test_scenarios.py::test_scenario[body-not-utf8]"


def collected_ids(pytester: pytest.Pytester, *args: str) -> list[str]:
    """The node ids `pytest --pyargs conformance --co -q ARGS` lists, run in process from pytester's directory (outside the checkout)."""
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist", "--pyargs", "conformance", "--co", "-q", *args)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    return [line for line in result.stdout.lines if "::" in line]


def test_ids_are_the_same_from_any_directory_with_any_fixtures_path(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Outside the checkout, with --target-fixtures in another tree (pytest reads it as a path for the rootdir): ids start with conformance/."""
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "a" / "b" / "c"
    elsewhere.mkdir(parents=True)
    fixtures = elsewhere / "mock-target.yaml"
    shutil.copy(data_path("fixtures", "mock-target.yaml"), fixtures)
    assert Path.cwd() == pytester.path and not pytester.path.is_relative_to(data_path("fixtures").parent)
    plain = collected_ids(pytester)
    with_fixtures = collected_ids(pytester, "--target-fixtures", str(fixtures))
    assert plain == with_fixtures and len(plain) > 50
    assert BODY_NOT_UTF8 in plain
    assert all(nodeid.startswith("conformance/test_") and SUITE_NODE.search(nodeid) for nodeid in plain), plain[:3]


def test_deselect_and_module_selection_take_the_stable_id(pytester: pytest.Pytester) -> None:
    """A CI job's `--deselect conformance/test_scenarios.py::...` removes exactly that test, run from the job's own directory."""
    everything = collected_ids(pytester)
    kept = collected_ids(pytester, "--deselect", BODY_NOT_UTF8)
    assert sorted(set(everything) - set(kept)) == [BODY_NOT_UTF8]
    only = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist", "--co", "-q",
                                        "--pyargs", "conformance.test_scenarios::test_scenario[body-not-utf8]")
    assert [line for line in only.stdout.lines if "::" in line] == [BODY_NOT_UTF8]
