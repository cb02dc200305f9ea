"""Collecting the suite's own test modules whatever the host project sets for python_files, python_functions or python_classes."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
from _pytest.pathlib import fnmatch_ex

SUITE_DIR = Path(__file__).resolve().parent.parent
SUITE_FILE = re.compile(r"^test_\w+\.py$")
# The suite's node ids start with this whatever the working directory, rootdir or install: pytest derives them from the
# rootdir, which it picks before entry-point plugins register their options, so `--target-fixtures /elsewhere/x.yaml`
# counts as a path there; ids keyed on by -k, --deselect, baselines and xdist's grouping must not move with it.
SUITE_ID_PREFIX = "conformance/"
# pytest's own defaults: the suite's modules are written for these, not for whatever the host configured.
SUITE_PATTERNS = {"python_functions": ("test",), "python_classes": ("Test",)}
# A suite installed in a virtualenv under the host's project is not the host's to collect when it runs `pytest .`.
NOT_SOURCE_PARTS = frozenset({"site-packages", "dist-packages"})


def is_suite_file(path: Path) -> bool:
    """Whether the path is one of the suite's test modules (conformance/test_*.py)."""
    # The name first: pytest asks about every file it visits, and resolving a path costs a system call or more.
    return SUITE_FILE.match(path.name) is not None and path.parent.resolve() == SUITE_DIR


def suite_nodeid(path: Path) -> str:
    """A suite module's node id: conformance/test_x.py, the same from any directory and any install."""
    return SUITE_ID_PREFIX + path.name


class SuiteModule(pytest.Module):
    """A suite module: its functions and classes are matched with pytest's default patterns, never the host's."""

    def _matches_prefix_or_glob_option(self, option_name: str, name: str) -> bool:
        prefixes = SUITE_PATTERNS.get(option_name)
        if prefixes is None:
            return bool(super()._matches_prefix_or_glob_option(option_name, name))
        return name.startswith(prefixes)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """A suite module the host's python_files would skip is collected anyway (pytest's own hook handles the rest)."""
    if not is_suite_file(file_path) or parent.session.isinitpath(file_path):
        return None
    if any(fnmatch_ex(pattern, file_path) for pattern in parent.config.getini("python_files")):
        return None
    return SuiteModule.from_parent(parent, path=file_path, nodeid=suite_nodeid(file_path))


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: Any) -> pytest.Module | None:
    """Suite modules pytest collects itself are SuiteModules too."""
    return SuiteModule.from_parent(parent, path=module_path, nodeid=suite_nodeid(module_path)) if is_suite_file(module_path) else None


def _arg_path(arg: str, pyargs: bool, invocation_dir: Path) -> Path | None:
    """Where a command-line argument points: a module name (with --pyargs) or a path, without ::test parts."""
    name = arg.split("::", 1)[0]
    if pyargs and re.fullmatch(r"[A-Za-z_][\w.]*", name):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin is not None:
            origin = Path(spec.origin)
            return origin.parent if origin.name == "__init__.py" else origin
    path = Path(name)
    return (path if path.is_absolute() else invocation_dir / path).resolve()


def targets_suite(config: pytest.Config) -> bool:
    """Whether this run's arguments name the suite: its package, one of its modules, or the source tree holding it."""
    pyargs = bool(config.getoption("pyargs", False))
    for arg in config.args:
        path = _arg_path(arg, pyargs, config.invocation_params.dir)
        if path is None:
            continue
        if path == SUITE_DIR or SUITE_DIR in path.parents:
            return True
        if path in SUITE_DIR.parents:
            between = SUITE_DIR.relative_to(path).parts[:-1]
            if not any(part.startswith(".") or part in NOT_SOURCE_PARTS for part in between):
                return True
    return False
